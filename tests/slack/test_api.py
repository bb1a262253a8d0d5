"""How a 429's `Retry-After` becomes a wait (Slack's number, a default, or a cap), and how a
run counts its calls."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import redis

from jobs.digest.ledger import Ledger
from jobs.errors import RateLimited
from jobs.slack.api import (
    DEFAULT_RETRY_AFTER,
    MAX_RETRY_AFTER,
    Client,
    HistoryMessage,
    call,
    history_page,
    rate_limited,
)
from sandbox.slack import SlackSimulator
from sandbox.workspace import generate


@pytest.mark.parametrize("header", [None, "", "soon", "nan", "inf", "-3"])
def test_a_missing_or_unusable_retry_after_waits_the_default(header: str | None) -> None:
    limited = rate_limited("conversations.history", header)
    assert limited.retry_after == DEFAULT_RETRY_AFTER
    assert limited.asked is None


@pytest.mark.parametrize(("header", "wait"), [("0", 0.0), ("1", 1.0), ("2.5", 2.5), ("300", 300)])
def test_a_retry_after_up_to_the_cap_is_waited_as_asked(header: str, wait: float) -> None:
    limited = rate_limited("conversations.history", header)
    assert limited.retry_after == wait == limited.asked


def test_a_huge_retry_after_is_capped_logged_and_kept(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="jobs.slack.api"):
        limited = rate_limited("conversations.replies", "86400")
    assert limited.retry_after == MAX_RETRY_AFTER
    assert limited.asked == 86400
    assert "86400s before conversations.replies" in caplog.text


@pytest.fixture(scope="module")
def sim() -> Iterator[SlackSimulator]:
    with SlackSimulator(generate(seed=3, channels=1, messages=5)) as simulator:
        yield simulator


@pytest.mark.parametrize(("header", "wait"), [(None, DEFAULT_RETRY_AFTER), ("soon", 5.0)])
def test_slack_refusing_without_a_usable_retry_after_waits_the_default(
    sim: SlackSimulator, header: str | None, wait: float
) -> None:
    sim.rate_limit("auth.test", times=1, retry_after=header)
    client = Client(None, token=sim.token, base_url=sim.url, retry_handlers=[])
    with pytest.raises(RateLimited) as raised:
        call(client, "auth.test")
    assert raised.value.retry_after == wait
    assert call(client, "auth.test")["ok"]
    assert client.counts.calls["auth.test"] == 2 and client.counts.limited["auth.test"] == 1


def test_a_capped_retry_after_is_kept_in_the_runs_record(
    sim: SlackSimulator, redis_client: redis.Redis
) -> None:
    sim.rate_limit("auth.test", times=1, retry_after=86400)
    client = Client(None, token=sim.token, base_url=sim.url, retry_handlers=[])
    with pytest.raises(RateLimited) as raised:
        call(client, "auth.test")
    assert raised.value.retry_after == MAX_RETRY_AFTER
    call(client, "auth.test")
    ledger = Ledger(redis_client, "capped@2026-12-07T09:00:00+00:00")
    redis_client.delete(ledger.key)
    ledger.add_calls(client.counts)
    ledger.add_calls(client.counts)  # counted once: adding forgets them
    assert ledger.calls() == ({"auth.test": 2}, {"auth.test": 1}, {"auth.test": 86400.0})


PAGE_BODY = {
    "ok": True,
    "messages": [
        {
            "type": "message",
            "user": "U1",
            "text": "shipped <https://example.com|it>",
            "ts": "1700000000.000100",
            "client_msg_id": "c0ffee",
            "team": "T1",
            "blocks": [{"type": "rich_text", "elements": [{"type": "text", "text": "shipped"}]}],
            "reactions": [{"name": "white_check_mark", "users": ["U2", "U3"], "count": 2}],
            "files": [
                {
                    "id": "F1",
                    "name": "a.png",
                    "title": "A",
                    "permalink": "https://x/F1",
                    "url_private": "https://files/F1",
                    "size": 3,
                }
            ],
            "reply_count": 2,
            "reply_users_count": 1,
            "thread_ts": "1700000000.000100",
            "metadata": {"event_type": "digest_posted", "event_payload": {"run": "r"}},
        }
    ],
    "has_more": True,
    "pin_count": 0,
    "response_metadata": {"next_cursor": "bmV4dA=="},
}


def test_a_history_page_keeps_what_the_service_reads_and_nothing_else() -> None:
    page = history_page("http://slack/api/conversations.history", json.dumps(PAGE_BODY))
    assert page is not None
    (message,) = page["messages"]
    assert message == {
        "user": "U1",
        "text": "shipped <https://example.com|it>",
        "ts": "1700000000.000100",
        "reactions": [{"name": "white_check_mark", "count": 2}],
        "files": [{"id": "F1", "name": "a.png", "title": "A", "permalink": "https://x/F1"}],
        "reply_count": 2,
        "reply_users_count": 1,
        "thread_ts": "1700000000.000100",
        "metadata": {"event_type": "digest_posted", "event_payload": {"run": "r"}},
    }
    assert page["ok"] is True and page["has_more"] is True
    assert page["response_metadata"] == {"next_cursor": "bmV4dA=="}
    replies = history_page("http://slack/api/conversations.replies", json.dumps(PAGE_BODY))
    assert replies == page


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({**PAGE_BODY, "messages": [{"ts": "1.2", "reply_count": "2"}]}),  # a string
        json.dumps({"ok": True, "messages": [{"ts": None}]}),
        "<html>Bad gateway</html>",
        "",
    ],
)
def test_a_body_that_is_not_such_a_page_is_left_to_be_parsed_whole(body: str) -> None:
    assert history_page("http://slack/api/conversations.history", body) is None


def test_other_methods_are_parsed_whole() -> None:
    assert history_page("http://slack/api/users.list", json.dumps(PAGE_BODY)) is None


def test_the_client_reads_history_over_http_without_the_fields_nobody_reads(
    sim: SlackSimulator,
) -> None:
    client = Client(None, token=sim.token, base_url=sim.url, retry_handlers=[])
    channel = call(client, "conversations.list")["channels"][0]["id"]
    page = call(client, "conversations.history", channel=channel, limit=5)
    assert page["messages"] and all(m["ts"] for m in page["messages"])
    assert all(set(m) <= HistoryMessage.__optional_keys__ for m in page["messages"])
    assert "channels" in call(client, "conversations.list").data  # other methods: whole
