"""The `/digest` slash command: help at once, the rest queued and answered by a worker."""

from __future__ import annotations

import time

import pytest
import redis
from starlette.testclient import TestClient

from jobs.config import Settings
from tests.conftest import Worker, environment, wait_for_state
from tests.http_sink import HttpSink
from tests.signed import command_form, signature_headers, signed_form, signed_json
from webhook.app import create_app


def post_command(client: TestClient, fields: dict[str, str]) -> dict[str, str]:
    body, headers = signed_form(fields)
    answer = client.post("/slack/commands", content=body, headers=headers)
    assert answer.status_code == 200
    reply: dict[str, str] = answer.json()
    return reply


@pytest.mark.parametrize("text", ["", "help", "  HELP  "])
def test_help_is_answered_at_once(client: TestClient, text: str) -> None:
    reply = post_command(client, command_form(text))
    assert reply["response_type"] == "ephemeral"
    assert "/digest help" in reply["text"]


def test_other_subcommands_are_queued_and_answered_through_response_url(
    client: TestClient, redis_client: redis.Redis, worker: Worker
) -> None:
    with HttpSink() as slack:
        reply = post_command(
            client, command_form("frobnicate <!channel>", slack.url("/commands/1"))
        )
        assert reply == {"response_type": "ephemeral", "text": "Working on `/digest frobnicate`…"}
        deadline = time.monotonic() + 30
        while not slack.posts and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(slack.posts) == 1
    path, message = slack.posts[0]
    assert path == "/commands/1"
    assert message["response_type"] == "ephemeral"
    assert "`/digest frobnicate` is not a command I know." in message["text"]


def test_echoed_subcommand_cannot_ping(client: TestClient) -> None:
    reply = post_command(client, command_form("<!channel>"))
    assert "<!channel>" not in reply["text"]
    assert "&lt;!channel&gt;" in reply["text"]


@pytest.mark.parametrize("text", ["<!channel> <https://evil|bank>", "now <!channel>"])
def test_the_later_answer_escapes_what_it_echoes(
    client: TestClient, worker: Worker, text: str
) -> None:
    with HttpSink() as slack:
        post_command(client, command_form(text, slack.url("/commands/echo")))
        deadline = time.monotonic() + 30
        while not slack.posts and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(slack.posts) == 1
    said = slack.posts[0][1]["text"]
    assert "&lt;!channel&gt;" in said
    assert "<!" not in said
    assert "<https://evil" not in said


def test_a_failed_reply_is_a_failed_task_not_a_crash(
    client: TestClient, redis_client: redis.Redis, worker: Worker
) -> None:
    before = set(redis_client.scan_iter("digests:task:*"))
    with HttpSink(status=404) as slack:
        post_command(client, command_form("nothing", slack.url("/gone")))
        (new,) = set(redis_client.scan_iter("digests:task:*")) - before
        state = wait_for_state(client, str(new).removeprefix("digests:task:"))
    assert state["state"] == "FAILURE"
    assert state["error"] == "RuntimeError: Slack refused the reply to /digest: HTTP 404"


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"text": "run"}, "slash command without command, response_url"),
        ({"command": "/digest", "text": "run"}, "slash command without response_url"),
    ],
)
def test_incomplete_commands_are_400(
    client: TestClient, fields: dict[str, str], error: str
) -> None:
    body, headers = signed_form(fields)
    answer = client.post("/slack/commands", content=body, headers=headers)
    assert answer.status_code == 400
    assert answer.json() == {"error": error}


def test_malformed_form_is_400(client: TestClient) -> None:
    body = b"\xff\xfe not a form"
    headers = {"Content-Type": "application/x-www-form-urlencoded", **signature_headers(body)}
    assert client.post("/slack/commands", content=body, headers=headers).status_code == 400


def test_json_to_the_command_route_is_400(client: TestClient) -> None:
    body, headers = signed_json({"command": "/digest"})
    assert client.post("/slack/commands", content=body, headers=headers).status_code == 400


def test_a_command_while_redis_is_down_gets_a_clear_answer() -> None:
    settings = Settings.from_env(environment("redis://127.0.0.1:1/0"))
    with TestClient(create_app(settings)) as client:
        reply = post_command(client, command_form("run eng-weekly"))
    assert reply["response_type"] == "ephemeral"
    assert "could not queue" in reply["text"]
