"""The LLM summary against a stub endpoint over real HTTP: success, errors, timeouts, secrets."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest

from jobs.digest.llm import Line, endpoint, prompt, summarize
from jobs.errors import LLMFailed
from sandbox.llm import LLMStub
from sandbox.redis_server import free_port

KEY = "sk-test-secret-key-0123456789abcdef"
LINES = [Line("Alice Martin", "we'll go with Postgres"), Line("Bob", "ok, I'll migrate by Friday")]


@pytest.fixture
def stub() -> Iterator[LLMStub]:
    with LLMStub() as server:
        yield server


def test_the_answer_comes_back_and_the_request_is_a_chat_completion(stub: LLMStub) -> None:
    text = summarize(stub.url, KEY, "gpt-test", prompt("Eng weekly", LINES), 5)
    assert text.startswith("• 2 messages from 2 people (Alice Martin, Bob).")
    (received,) = stub.received
    assert received.path == "/v1/chat/completions"
    assert received.body["model"] == "gpt-test"
    assert [m["role"] for m in received.body["messages"]] == ["system", "user"]
    assert "Alice Martin: we'll go with Postgres" in received.body["messages"][1]["content"]
    assert received.headers["authorization"] == f"Bearer {KEY}"
    assert received.headers["api-key"] == KEY


def test_no_key_sends_no_credentials(stub: LLMStub) -> None:
    summarize(stub.url, None, "llama3", prompt("t", LINES), 5)
    assert "authorization" not in stub.received[0].headers
    assert "api-key" not in stub.received[0].headers


def test_an_azure_deployment_url_is_used_as_it_is(stub: LLMStub) -> None:
    url = f"{stub.server.url}/openai/deployments/digests/chat/completions?api-version=2024-06-01"
    summarize(url, KEY, "gpt-4o", prompt("t", LINES), 5)
    assert stub.received[0].path == "/openai/deployments/digests/chat/completions"
    assert endpoint("https://api.openai.com/v1/") == "https://api.openai.com/v1/chat/completions"
    assert endpoint("http://localhost:11434/v1") == "http://localhost:11434/v1/chat/completions"


def test_an_error_status_fails_with_the_status_only(
    stub: LLMStub, caplog: pytest.LogCaptureFixture
) -> None:
    stub.faults.status = 500
    with caplog.at_level(logging.DEBUG), pytest.raises(LLMFailed) as failed:
        summarize(stub.url, KEY, "m", prompt("t", LINES), 5)
    assert str(failed.value) == "LLM endpoint answered 500"
    for shown in (str(failed.value), caplog.text):
        assert KEY not in shown and "Postgres" not in shown


def test_a_slow_endpoint_times_out(stub: LLMStub) -> None:
    stub.faults.delay = 3
    started = time.monotonic()
    with pytest.raises(LLMFailed, match=r"timed out after 0\.5s"):
        summarize(stub.url, KEY, "m", prompt("t", LINES), timeout=0.5)
    assert time.monotonic() - started < 2.5


def test_an_answer_that_is_no_completion_fails(stub: LLMStub) -> None:
    stub.faults.malformed = True
    with pytest.raises(LLMFailed, match="not a chat completion"):
        summarize(stub.url, KEY, "m", prompt("t", LINES), 5)


def test_an_unreachable_endpoint_fails_with_why() -> None:
    with pytest.raises(LLMFailed, match="unreachable: connection refused"):
        summarize(f"http://127.0.0.1:{free_port()}/v1", KEY, "m", prompt("t", LINES), 5)


def test_the_prompt_holds_no_addresses_or_credentials() -> None:
    said = [
        Line("Ana", "mail ana@example.com, token xoxb-123-456-abc, key sk-abcdefghijklmnopqrstuv"),
        Line("Ben", "db at postgres://admin:hunter22@db.internal/x, AKIAABCDEFGHIJKLMNOP"),
    ]
    content = prompt("t", said)[1]["content"]
    for secret in ("ana@example.com", "xoxb-", "sk-abc", "hunter22", "AKIAABCD"):
        assert secret not in content
    assert "[email]" in content and "[redacted]" in content


def test_the_prompt_keeps_the_latest_messages_within_its_size() -> None:
    many = [Line("Ana", f"message number {n}") for n in range(5000)]
    content = prompt("t", many, limit=2000)[1]["content"]
    assert len(content) < 2200
    assert "message number 4999" in content and "message number 0\n" not in content
    assert "(earlier messages omitted)" in content
