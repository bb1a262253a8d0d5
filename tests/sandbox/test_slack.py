"""The Slack sandbox as the product meets it: slack_sdk's WebClient over real HTTP."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse
from slack_sdk.webhook import WebhookClient

from sandbox.slack import SlackSimulator
from sandbox.slack.responses import response_url
from sandbox.workspace import DEMO_END, DEMO_START, big_channel, generate, ts_micros


@pytest.fixture(scope="module")
def sim() -> Iterator[SlackSimulator]:
    with SlackSimulator(generate()) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def big() -> Iterator[SlackSimulator]:
    with SlackSimulator(big_channel(3000, seed=7)) as simulator:
        yield simulator


def client_for(simulator: SlackSimulator) -> WebClient:
    """A client that surfaces every 429 and 5xx instead of retrying it."""
    return WebClient(token=simulator.token, base_url=simulator.url, retry_handlers=[])


@pytest.fixture
def slack(sim: SlackSimulator) -> Iterator[WebClient]:
    yield client_for(sim)
    sim.clear_faults()


def error_of(call: Callable[[], object]) -> SlackApiError:
    with pytest.raises(SlackApiError) as raised:
        call()
    return raised.value


def oldest_first(simulator: SlackSimulator) -> list[dict[str, Any]]:
    channel = simulator.workspace.channels[0]["id"]
    return simulator.workspace.messages[channel]


def pages_of(response: SlackResponse) -> list[dict[str, Any]]:
    """Each page's data: slack_sdk's iteration reuses one response object for every page."""
    return [dict(page.data) for page in response]


def http(simulator: SlackSimulator, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        simulator.url.removesuffix("/api/") + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def test_history_pages_through_every_message_once_newest_first(big: SlackSimulator) -> None:
    channel = big.workspace.channels[0]["id"]
    pages = pages_of(client_for(big).conversations_history(channel=channel, limit=999))
    seen = [message["ts"] for page in pages for message in page["messages"]]
    assert len(pages) == 4
    assert sorted(seen, key=ts_micros, reverse=True) == seen
    assert set(seen) == {message["ts"] for message in oldest_first(big)}
    assert len(seen) == 3000
    assert [page["has_more"] for page in pages] == [True, True, True, False]
    assert pages[-1]["response_metadata"]["next_cursor"] == ""


def test_history_window_excludes_its_bounds_unless_inclusive(big: SlackSimulator) -> None:
    messages = oldest_first(big)
    oldest, latest = messages[100]["ts"], messages[200]["ts"]
    channel = big.workspace.channels[0]["id"]

    def window(**extra: Any) -> list[str]:
        pages = pages_of(
            client_for(big).conversations_history(
                channel=channel, oldest=oldest, latest=latest, limit=7, **extra
            )
        )
        return [message["ts"] for page in pages for message in page["messages"]]

    assert window() == [message["ts"] for message in reversed(messages[101:200])]
    assert window(inclusive=True) == [message["ts"] for message in reversed(messages[100:201])]


def test_history_limit_defaults_to_100_and_stops_at_999(big: SlackSimulator) -> None:
    slack = client_for(big)
    channel = big.workspace.channels[0]["id"]
    assert len(slack.conversations_history(channel=channel)["messages"]) == 100
    assert len(slack.conversations_history(channel=channel, limit=5000)["messages"]) == 999


def test_history_refuses_a_cursor_it_did_not_issue(slack: WebClient, sim: SlackSimulator) -> None:
    error = error_of(lambda: slack.conversations_history(channel=sim.channel_id("eng"), cursor="x"))
    assert error.response["error"] == "invalid_cursor"


def test_rate_limit_answers_429_with_retry_after(slack: WebClient, sim: SlackSimulator) -> None:
    sim.rate_limit("users.info", every=3, retry_after=7)
    user = sim.workspace.users[0]["id"]
    before = sim.calls["users.info"]
    slack.users_info(user=user)
    slack.users_info(user=user)
    error = error_of(lambda: slack.users_info(user=user))
    assert error.response.status_code == 429
    assert error.response["error"] == "ratelimited"
    assert error.response.headers["Retry-After"] == "7"
    assert slack.users_info(user=user)["user"]["id"] == user
    assert sim.calls["users.info"] - before == 4


def test_the_2025_limits_pace_history_and_cap_its_pages(
    slack: WebClient, sim: SlackSimulator
) -> None:
    channel = sim.channel_id("general")
    sim.limit_like_2025()
    page = slack.conversations_history(channel=channel, limit=200)
    assert len(page["messages"]) == 15 and page["has_more"]
    refused = error_of(lambda: slack.conversations_history(channel=channel))
    assert refused.response.status_code == 429
    assert 59 <= int(refused.response.headers["Retry-After"]) <= 60
    assert slack.users_list()["ok"]  # other methods keep going
    sim.limit_like_2025(minute=0.2)
    assert slack.conversations_history(channel=channel)["ok"]
    shortened = error_of(lambda: slack.conversations_history(channel=channel))
    assert 0 < float(shortened.response.headers["Retry-After"]) <= 0.2
    time.sleep(0.25)
    assert slack.conversations_history(channel=channel)["ok"]
    sim.clear_faults()
    assert len(slack.conversations_history(channel=channel, limit=200)["messages"]) == 200


def test_rate_limit_for_a_count_of_calls_then_recovers(
    slack: WebClient, sim: SlackSimulator
) -> None:
    sim.rate_limit("auth.test", times=2)
    assert error_of(slack.auth_test).response.status_code == 429
    assert error_of(slack.auth_test).response.status_code == 429
    assert slack.auth_test()["ok"]


def test_fail_answers_server_errors_then_recovers(slack: WebClient, sim: SlackSimulator) -> None:
    sim.fail("conversations.info", status=503, times=1)
    channel = sim.channel_id("eng")
    assert error_of(lambda: slack.conversations_info(channel=channel)).response.status_code == 503
    assert slack.conversations_info(channel=channel)["channel"]["name"] == "eng"


def test_slow_delays_answers(slack: WebClient, sim: SlackSimulator) -> None:
    sim.slow("auth.test", 0.3, times=1)
    started = time.monotonic()
    slack.auth_test()
    assert time.monotonic() - started >= 0.3


def test_auth_errors(sim: SlackSimulator) -> None:
    wrong = WebClient(token="xoxb-wrong", base_url=sim.url, retry_handlers=[])
    missing = WebClient(base_url=sim.url, retry_handlers=[])
    assert error_of(wrong.auth_test).response["error"] == "invalid_auth"
    assert error_of(missing.auth_test).response["error"] == "not_authed"


def test_errors_are_ok_false_with_slacks_codes(slack: WebClient, sim: SlackSimulator) -> None:
    eng, design = sim.channel_id("eng"), sim.channel_id("design")  # never invited to design
    cases: dict[str, Callable[[], object]] = {
        "channel_not_found": lambda: slack.conversations_history(channel="C0NOPE"),
        "not_in_channel": lambda: slack.conversations_history(channel=design),
        "user_not_found": lambda: slack.users_info(user="U0NOPE"),
        "message_not_found": lambda: slack.chat_getPermalink(channel=eng, message_ts="1.000001"),
        "thread_not_found": lambda: slack.conversations_replies(channel=eng, ts="1.000001"),
    }
    for code, call in cases.items():
        error = error_of(call)
        assert (error.response.status_code, error.response.data) == (
            200,
            {"ok": False, "error": code},
        )
    unknown = error_of(lambda: slack.api_call("conversations.nope")).response.data
    assert unknown == {"ok": False, "error": "unknown_method", "req_method": "conversations.nope"}


def test_private_channels_the_bot_is_not_in_do_not_exist_for_it(sim: SlackSimulator) -> None:
    workspace = generate(channels=3)
    secret = {**workspace.channels[2], "is_private": True, "is_member": False}
    workspace.channels[2] = secret
    with SlackSimulator(workspace) as private:
        slack = client_for(private)
        pages = pages_of(slack.conversations_list(types="public_channel,private_channel", limit=1))
        names = [channel["name"] for page in pages for channel in page["channels"]]
        assert names == ["general", "eng"]
        error = error_of(lambda: slack.conversations_info(channel=secret["id"]))
        assert error.response["error"] == "channel_not_found"


def test_post_message_lands_in_history_with_metadata_only_on_request(
    slack: WebClient, sim: SlackSimulator
) -> None:
    metadata = {"event_type": "digest_posted", "event_payload": {"run": "eng-weekly/2025-01-06"}}
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Digest*"}}]
    posted = slack.chat_postMessage(
        channel="#eng-digest", text="Digest", blocks=blocks, metadata=metadata
    )
    channel = sim.channel_id("eng-digest")
    assert (posted["channel"], posted["message"]["metadata"]) == (channel, metadata)

    plain = slack.conversations_history(channel=channel, oldest=posted["ts"], inclusive=True)
    full = slack.conversations_history(
        channel=channel, oldest=posted["ts"], inclusive=True, include_all_metadata=True
    )
    assert [message["ts"] for message in plain["messages"]] == [posted["ts"]]
    assert "metadata" not in plain["messages"][0]
    assert full["messages"][0]["metadata"] == metadata
    assert full["messages"][0]["blocks"] == blocks
    assert full["messages"][0]["bot_id"] == sim.workspace.bot_id

    record = sim.posted[-1]
    assert (record["channel"], record["channel_id"], record["ts"]) == (
        "#eng-digest",
        channel,
        posted["ts"],
    )
    assert http(sim, "GET", "/sandbox/posted")[-1] == record


def test_post_message_takes_form_encoded_arguments(slack: WebClient, sim: SlackSimulator) -> None:
    blocks = [{"type": "divider"}]
    posted = slack.api_call(
        "chat.postMessage",
        params={"channel": "eng-digest", "text": "form", "blocks": json.dumps(blocks)},
    )
    assert posted["message"]["blocks"] == blocks
    assert sim.posted[-1]["blocks"] == blocks


def test_post_message_needs_membership_and_text(slack: WebClient, sim: SlackSimulator) -> None:
    not_member = error_of(lambda: slack.chat_postMessage(channel="#design", text="hi"))
    with pytest.warns(UserWarning, match="text"):  # slack_sdk warns before sending
        no_text = error_of(lambda: slack.chat_postMessage(channel="#eng", text=""))
    assert not_member.response["error"] == "not_in_channel"
    assert no_text.response["error"] == "no_text"


def test_thread_reply_is_kept_for_replies_and_counted_on_its_parent(
    slack: WebClient, sim: SlackSimulator
) -> None:
    channel = sim.channel_id("support")
    parent = sim.workspace.messages[channel][-1]
    reply = slack.chat_postMessage(channel=channel, text="noted", thread_ts=parent["ts"])
    thread = slack.conversations_replies(channel=channel, ts=parent["ts"])["messages"]
    assert thread[0]["ts"] == parent["ts"]
    assert thread[0]["reply_count"] == parent.get("reply_count", 0) + 1
    assert thread[0]["latest_reply"] == thread[-1]["ts"] == reply["ts"]
    newest = slack.conversations_history(channel=channel, limit=1)["messages"][0]
    assert newest["ts"] == parent["ts"]


def test_replies_page_with_the_parent_first_on_each_page(
    slack: WebClient, sim: SlackSimulator
) -> None:
    (channel, thread_ts), replies = max(sim.workspace.replies.items(), key=lambda i: len(i[1]))
    pages = pages_of(slack.conversations_replies(channel=channel, ts=thread_ts, limit=2))
    assert all(page["messages"][0]["ts"] == thread_ts for page in pages)
    seen = [message["ts"] for page in pages for message in page["messages"][1:]]
    assert seen == [reply["ts"] for reply in replies]


def test_users_list_pages(slack: WebClient, sim: SlackSimulator) -> None:
    pages = pages_of(slack.users_list(limit=4))
    ids = [user["id"] for page in pages for user in page["members"]]
    assert ids == [user["id"] for user in sim.workspace.users]
    assert len(pages) == -(-len(ids) // 4)


def test_permalink_shape(slack: WebClient, sim: SlackSimulator) -> None:
    channel = sim.channel_id("eng")
    ts = sim.workspace.messages[channel][0]["ts"]
    link = slack.chat_getPermalink(channel=channel, message_ts=ts)["permalink"]
    assert link == f"https://acme-sandbox.slack.com/archives/{channel}/p{ts.replace('.', '')}"
    assert slack.auth_test()["url"] == "https://acme-sandbox.slack.com/"


def test_controls_over_http(sim: SlackSimulator, slack: WebClient) -> None:
    assert http(sim, "POST", "/sandbox/rate_limit", {"method": "*", "retry_after": 3})["ok"]
    assert error_of(slack.auth_test).response.headers["Retry-After"] == "3"
    assert http(sim, "DELETE", "/sandbox/faults")["ok"]
    assert slack.auth_test()["ok"]
    assert http(sim, "GET", "/sandbox/calls")["auth.test"] == sim.calls["auth.test"]


def test_a_response_url_keeps_what_a_worker_posts_to_it(sim: SlackSimulator) -> None:
    url = response_url(sim.url.removesuffix("/api/"), "req-1")
    answer = WebhookClient(url).send(text="Posted the digest.", response_type="ephemeral")
    assert answer.status_code == 200
    kept = http(sim, "GET", "/sandbox/responses")
    assert {"id": "req-1", "text": "Posted the digest.", "response_type": "ephemeral"} in kept


def test_query_string_arguments(sim: SlackSimulator) -> None:
    channel = sim.channel_id("eng")
    answer = http(sim, "GET", f"/api/conversations.info?channel={channel}&token={sim.token}")
    assert answer["channel"]["id"] == channel


def test_generator_is_deterministic() -> None:
    assert generate(5, channels=3, messages=200) == generate(5, channels=3, messages=200)
    assert generate(5, channels=3, messages=200) != generate(6, channels=3, messages=200)
    assert big_channel(2000, seed=1) == big_channel(2000, seed=1)


def test_generated_history_has_every_kind_of_message() -> None:
    workspace = generate()
    messages = [m for history in workspace.messages.values() for m in history]
    replies = [reply for thread in workspace.replies.values() for reply in thread]
    texts = " ".join(message["text"] for message in messages)
    subtypes = {message.get("subtype") for message in messages}
    assert {"channel_join", "channel_leave", "bot_message", "thread_broadcast"} <= subtypes
    for field in ("reactions", "files", "edited", "reply_count"):
        assert any(field in message for message in messages), field
    for markup in ("<!channel>", "<https://evil.example|bank>", "&amp;", "<script>", "<@U"):
        assert markup in texts, markup
    assert re.search(r"<https://[^|>]+>", texts)
    assert any(
        message["text"].endswith("?") and "reply_count" not in message for message in messages
    )
    assert any(message["text"].endswith("?") and "reply_count" in message for message in messages)
    assert not all(channel["is_member"] for channel in workspace.channels)
    for channel, history in workspace.messages.items():
        thread_replies = [
            reply
            for (where, _), thread in workspace.replies.items()
            for reply in thread
            if where == channel and reply.get("subtype") != "thread_broadcast"
        ]
        stamps = [message["ts"] for message in history + thread_replies]
        assert len(stamps) == len(set(stamps))
    everything = [message["ts"] for message in messages + replies]
    window = (DEMO_START.timestamp() * 1e6, DEMO_END.timestamp() * 1e6)
    assert all(re.fullmatch(r"\d{10}\.\d{6}", ts) for ts in everything)
    assert all(window[0] <= ts_micros(ts) < window[1] for ts in everything)


def test_generated_threads_match_their_parents() -> None:
    workspace = generate(3)
    parents = {
        (channel, message["ts"]): message
        for channel, history in workspace.messages.items()
        for message in history
    }
    for key, replies in workspace.replies.items():
        parent = parents[key]
        assert parent["thread_ts"] == parent["ts"]
        assert parent["reply_count"] == len(replies)
        assert parent["latest_reply"] == replies[-1]["ts"]
        assert all(reply["thread_ts"] == parent["ts"] for reply in replies)
        assert set(parent["reply_users"]) == {reply["user"] for reply in replies}


def test_generator_uses_the_window_given() -> None:
    start, end = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)
    workspace = generate(channels=1, messages=50, start=start, end=end)
    stamps = [ts_micros(message["ts"]) for message in next(iter(workspace.messages.values()))]
    assert start.timestamp() * 1e6 <= min(stamps) and max(stamps) < end.timestamp() * 1e6


def test_the_tiers_count_each_method_per_token_over_a_sliding_minute(
    slack: WebClient, sim: SlackSimulator
) -> None:
    channel = sim.channel_id("general")
    sim.traffic.clear()
    sim.limit(minute=1.0)
    try:
        started = time.monotonic()
        for _ in range(50):  # Tier 3: 50 a minute
            slack.conversations_history(channel=channel, limit=1)
        refused = error_of(lambda: slack.conversations_history(channel=channel, limit=1))
        assert refused.response.status_code == 429
        wait = float(refused.response.headers["Retry-After"])
        assert 0 < wait <= 1.0 - (time.monotonic() - started) + 0.05
        assert slack.users_info(user=sim.workspace.users[0]["id"])["ok"]  # Tier 4 keeps going
        other = WebClient(token="xoxb-another-app", base_url=sim.url, retry_handlers=[])
        assert (
            error_of(lambda: other.conversations_history(channel=channel)).response.data["error"]
            == "invalid_auth"
        )  # another token has a minute of its own: refused for auth only
        time.sleep(wait + 0.01)
        assert slack.conversations_history(channel=channel, limit=1)["ok"]
        answered = [c for c in sim.traffic if c.method == "conversations.history"]
        assert [c.status for c in answered].count(429) == 1
        assert sim.summary()["conversations.history"]["429"] == 1
    finally:
        sim.clear_faults()


def test_the_tiers_can_cap_pages_and_count_the_distinct_ones(
    slack: WebClient, sim: SlackSimulator
) -> None:
    channel = sim.channel_id("general")
    sim.traffic.clear()
    sim.limit(minute=60, page=40)
    try:
        first = slack.conversations_history(channel=channel, limit=999)
        assert len(first["messages"]) == 40 and first["has_more"]
        slack.conversations_history(channel=channel, limit=999)
        slack.conversations_history(
            channel=channel, limit=999, cursor=first["response_metadata"]["next_cursor"]
        )
        assert sim.summary()["conversations.history"] == {"calls": 3, "429": 0, "distinct pages": 2}
    finally:
        sim.clear_faults()


def test_posts_are_limited_per_channel(slack: WebClient, sim: SlackSimulator) -> None:
    sim.limit(minute=1.0)
    try:
        for _ in range(60):
            slack.chat_postMessage(channel=sim.channel_id("random"), text="hello")
        refused = error_of(
            lambda: slack.chat_postMessage(channel=sim.channel_id("random"), text="x")
        )
        assert refused.response.status_code == 429
        assert slack.chat_postMessage(channel=sim.channel_id("eng"), text="hello")["ok"]
    finally:
        sim.clear_faults()
