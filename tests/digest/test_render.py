# Digests write ranges with en dashes, so the expected texts do too.
# ruff: noqa: RUF001
from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from freezegun import freeze_time

from jobs.digest import activity
from jobs.digest.model import SECTIONS, Message, Stats, Window
from jobs.digest.render.blocks import (
    MAX_BLOCKS,
    MAX_HEADER,
    MAX_MESSAGE,
    MAX_SECTION,
    SlackMessage,
    slack_messages,
)
from jobs.digest.render.outline import dates, trend, window_text
from jobs.digest.summarize import ChannelTally, summarize, with_permalinks
from jobs.slack.directory import permalink
from jobs.slack.mrkdwn import plain

BERLIN_WEEK = Window(
    datetime(2026, 11, 16, 8, tzinfo=UTC), datetime(2026, 11, 23, 8, tzinfo=UTC), "Europe/Berlin"
)
BASE = "https://acme.slack.com/archives/"
HOSTILE = "Hi <!channel> & <!here>: pay at <https://evil.example|bank> <script>x</script>?"
NAMES = {"U1": "alice", "U2": "Bob <!everyone> & co", "C1": "eng"}


def digest_of(
    channels: dict[str, list[Message]],
    *,
    title: str = "eng-weekly digest",
    window: Window = BERLIN_WEEK,
    previous: Stats | None = None,
    sections: tuple[str, ...] = SECTIONS,
) -> Any:
    """A digest summarized from channels' messages, with permalinks as the pipeline makes them."""
    tallies = []
    for channel, messages in channels.items():
        tally = ChannelTally(channel, channel.lower(), days=activity.days(window))
        for message in messages:
            tally.add_page([message])
        tallies.append(tally)
    digest = summarize(title, window, tallies, previous=previous, sections=sections)
    base = BASE.removesuffix("archives/")
    return with_permalinks(digest, lambda p: permalink(base, p.channel, p.ts, p.thread))


def message(n: int, text: str, user: str = "U1", **extra: Any) -> Message:
    return {
        "type": "message",
        "user": user,
        "text": text,
        "ts": f"{1_790_000_000 + n}.000000",
        **extra,
    }


def hostile_digest() -> Any:
    return digest_of(
        {
            "C1": [
                message(1, HOSTILE, "U2", reply_count=2, reply_users_count=2),
                message(2, "Who owns <#C9|ops-&-on-call>? see <https://x.example/?a=1&amp;b=2>"),
                message(3, "x", "U3", subtype="channel_join"),
            ]
        }
    )


def texts(blocks: list[dict[str, Any]]) -> Iterator[str]:
    for block in blocks:
        for part in (block.get("text"), *block.get("fields", ()), *block.get("elements", ())):
            if part:
                yield part["text"]


def texts_of(messages: list[SlackMessage]) -> Iterator[str]:
    return (text for m in messages for text in texts(m.blocks))


def everything(messages: list[SlackMessage]) -> str:
    return "\n".join(texts_of(messages))


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("hi <@U1>", "hi @alice"),
        ("hi <@U7|bob>", "hi @bob"),
        ("in <#C1>, <#C2|random>", "in #eng, #random"),
        ("<!channel> <!here> <!everyone>", "@channel @here @everyone"),
        ("<!subteam^S1|@team> <!date^1392734382^{date}|Feb 18>", "@team Feb 18"),
        ("<https://evil.example|bank>", "bank (https://evil.example)"),
        ("<https://x.example/?a=1&amp;b=2>", "https://x.example/?a=1&b=2"),
        ("a &lt;b&gt; &amp;lt; c", "a <b> &lt; c"),
        ("<script>alert(1)</script>", "<script>alert(1)</script>"),
        ("two\n\nlines  here", "two lines here"),
    ],
)
def test_plain_text_reads_slack_markup_without_making_anything_live(raw: str, shown: str) -> None:
    assert plain(raw, NAMES) == shown


def test_users_text_cannot_ping_or_forge_a_link() -> None:
    shown = everything(slack_messages(hostile_digest(), NAMES))
    assert "@channel" in shown and "<!" not in shown
    assert "bank (https://evil.example)" in shown
    assert "&lt;script&gt;x&lt;/script&gt;" in shown and "<script>" not in shown
    assert "Hi @channel &amp; @here" in shown
    assert "@Bob &lt;!everyone&gt; &amp; co" in shown
    assert "#ops-&amp;-on-call" in shown
    assert "https://x.example/?a=1&amp;b=2" in shown
    # The only markup left is links to our own permalinks.
    assert {m.split("|")[0] for m in re.findall(r"<([^>]*)>", shown)} == {
        f"{BASE}C1/p1790000001000000",
        f"{BASE}C1/p1790000002000000",
    }


def test_every_message_has_an_escaped_text_fallback() -> None:
    liked = [{"name": "+1", "users": [], "count": 1}]
    digest = digest_of(
        {f"C{c}": [message(n, "x " * 200, reactions=liked) for n in range(5)] for c in range(20)},
        title="a<b digest",
    )
    parts = slack_messages(digest, NAMES)
    assert len(parts) > 1
    assert parts[0].text.startswith("a&lt;b digest, 16–23 Nov 2026. Messages: 100, People: 1,")
    assert [part.text for part in parts[1:]] == [f"a&lt;b digest: #c{c}" for c in range(20)]


def test_the_header_is_the_schedule_and_fits_slack() -> None:
    header = slack_messages(digest_of({}, title="s" * 200), NAMES)[0].blocks[0]
    assert header["type"] == "header"
    assert header["text"]["type"] == "plain_text"
    assert len(header["text"]["text"]) == MAX_HEADER
    assert header["text"]["text"].endswith("…")


def test_the_window_shows_in_the_schedules_zone() -> None:
    context = slack_messages(digest_of({}), NAMES)[0].blocks[1]
    assert context["elements"][0]["text"] == (
        "Mon 16 Nov 2026 09:00 – Mon 23 Nov 2026 09:00 (Europe/Berlin)"
    )
    # Across the end of summer time, both ends stay at 09:00 local.
    autumn = Window(
        datetime(2026, 10, 19, 7, tzinfo=UTC),
        datetime(2026, 10, 26, 8, tzinfo=UTC),
        "Europe/Berlin",
    )
    assert window_text(autumn) == "Mon 19 Oct 2026 09:00 – Mon 26 Oct 2026 09:00 (Europe/Berlin)"


@pytest.mark.parametrize(
    ("start", "end", "shown"),
    [
        (datetime(2026, 11, 16, 8), datetime(2026, 11, 23, 8), "16–23 Nov 2026"),
        # Midnight to midnight in Berlin: the end is excluded, so the 23rd is not covered.
        (datetime(2026, 11, 15, 23), datetime(2026, 11, 22, 23), "16–22 Nov 2026"),
        (datetime(2026, 11, 28, 8), datetime(2026, 12, 5, 8), "28 Nov – 5 Dec 2026"),
        (datetime(2026, 12, 28, 8), datetime(2027, 1, 4, 8), "28 Dec 2026 – 4 Jan 2027"),
        (datetime(2026, 11, 16, 8), datetime(2026, 11, 16, 9), "16 Nov 2026"),
    ],
)
def test_dates_name_the_days_covered(start: datetime, end: datetime, shown: str) -> None:
    window = Window(start.replace(tzinfo=UTC), end.replace(tzinfo=UTC), "Europe/Berlin")
    assert dates(window) == shown


def fields(digest: Any) -> list[str]:
    stats = slack_messages(digest, NAMES)[0].blocks[2]
    return [field["text"] for field in stats.get("fields", [])]


def test_headline_figures_show_their_change_and_only_when_not_zero() -> None:
    messages = [message(n, "hi", f"U{n % 3}") for n in range(12)]
    messages[0]["reactions"] = [{"name": "+1", "users": [], "count": 4}]
    previous = Stats(messages=10, people=6, reactions=0, links=5)
    assert fields(digest_of({"C1": messages}, previous=previous)) == [
        "*Messages:* 12 ▲ 20%",
        "*People:* 3 ▼ 50%",
        "*Reactions:* 4 ▲ new",
        "*Links:* 0 ▼ 100%",
    ]
    assert fields(digest_of({"C1": messages})) == [
        "*Messages:* 12",
        "*People:* 3",
        "*Reactions:* 4",
    ]
    same = Stats(messages=12, people=3, reactions=4)
    assert fields(digest_of({"C1": messages}, previous=same)) == [
        "*Messages:* 12",
        "*People:* 3",
        "*Reactions:* 4",
    ]


def test_a_quiet_digest_says_so() -> None:
    shown = everything(slack_messages(digest_of({"C1": []}), NAMES))
    assert "No activity from people." in shown
    assert "Nothing to report" not in shown  # the summary section still says what happened
    assert "no messages from people" in shown


def test_only_the_chosen_sections_show_in_their_order() -> None:
    digest = digest_of(
        {"C1": [message(1, "why?", reply_count=0), message(2, "thread", reply_count=3)]},
        sections=("questions", "people"),
    )
    shown = everything(slack_messages(digest, NAMES))
    assert re.findall(r"^\*([A-Z][a-z ]+)\*", shown, re.M) == [
        "Channels",
        "Unanswered questions",
        "Most active",
    ]
    channel_only = digest_of({"C1": [message(1, "plain")]}, sections=("questions",))
    assert "Nothing to report in this window." in everything(slack_messages(channel_only, NAMES))


def test_a_big_digest_continues_in_more_messages_within_slacks_limits() -> None:
    channels = {
        f"C{c}": [
            message(
                n,
                f"channel {c} post {n} " + "&<>" * 60 + "padding " * 40,
                f"U{n}",
                reply_count=n + 1,
                reply_users_count=1,
                reactions=[{"name": "+1", "users": [], "count": n + 1}],
            )
            for n in range(5)
        ]
        + [message(10 + n, "x", f"U{100 + n}", subtype="channel_join") for n in range(40)]
        for c in range(12)
    }
    digest = digest_of(channels)
    parts = slack_messages(digest, {f"U{n}": "&" * 80 for n in range(200)})
    assert len(parts) > 2
    for part in parts:
        assert len(part.blocks) <= MAX_BLOCKS
        assert sum(len(text) for text in texts(part.blocks)) <= MAX_MESSAGE
        for block in part.blocks:
            assert len(block.get("text", {}).get("text", "")) <= MAX_SECTION
    shown = everything(parts)
    for channel in digest.channels:
        starts = [p for p in parts if p.text.endswith(f": #{channel.name}")]
        continued = [p for p in parts if f": #{channel.name} (part" in p.text]
        assert len(starts) + len(continued) >= 1
        assert all(p.blocks[0]["type"] == "context" for p in continued[1:])
        headings = [t for t in texts_of(parts) if t.startswith(f"*#{channel.name}* — ")]
        assert len(headings) == 1
        for post in channel.threads:  # in top threads and in most reacted, at least
            assert shown.count(f"<{post.permalink}|") >= 2
    assert shown.count("Joined") == 12 * 8  # 40 members, 5 a line, in every channel


def test_rendering_does_not_read_the_clock() -> None:
    digest = hostile_digest()
    with freeze_time("2026-11-23 08:00:00"):
        first = slack_messages(digest, NAMES)
    with freeze_time("2031-01-01 00:00:00"):
        assert slack_messages(digest, NAMES) == first


def busy_channel(c: int) -> list[Message]:
    """Threads, decisions and action items enough to overflow any summary."""
    found = []
    for n in range(10):
        found.append(
            message(
                c * 100 + n,
                f"Decision: we'll go with plan {c}-{n} " + "because " * 30,
                f"U{n}",
                reply_count=n + 1,
                reply_users_count=n + 1,
                reactions=[{"name": "white_check_mark", "users": [], "count": 2}],
            )
        )
        found.append(message(c * 100 + 50 + n, f"<@U{n}> can you check item {c}-{n} please?"))
    return found


def test_the_summary_post_reads_in_under_a_minute_however_big_the_digest() -> None:
    digest = digest_of({f"C{c}": busy_channel(c) for c in range(30)})
    summary = slack_messages(digest, NAMES)[0]
    assert len(summary.blocks) <= 15
    assert sum(len(text) for text in texts(summary.blocks)) <= 2_500
    shown = "\n".join(texts(summary.blocks))
    for title in ("*Highlights*", "*Decisions*", "*Action items*", "*Channels*"):
        assert title in shown
    assert "more in the thread_" in shown


def test_each_channels_details_are_their_own_reply() -> None:
    digest = digest_of({"C1": busy_channel(1), "C2": busy_channel(2), "C3": []})
    parts = slack_messages(digest, NAMES)
    assert [p.text for p in parts[1:]] == [
        "eng-weekly digest: #c1",
        "eng-weekly digest: #c2",
        "eng-weekly digest: #c3",
    ]
    assert parts[1].blocks[0]["text"]["text"].startswith("*#c1* — 20 messages from 10 people")
    assert "Nothing to report" not in everything(parts[1:3])


@pytest.mark.parametrize(
    ("now", "before", "shown"),
    [
        (12, 10, "▲ 20%"),
        (5, 10, "▼ 50%"),
        (0, 4, "▼ 100%"),
        (10, 10, ""),
        (1000, 999, ""),  # rounds to no change
        (3, 0, "▲ new"),
        (3, None, ""),
        (1, 3, "▼ 67%"),
    ],
)
def test_trends_are_the_change_in_percent(now: int, before: int | None, shown: str) -> None:
    assert trend(now, before) == shown


def test_the_summary_shows_the_activity_of_each_day_as_one_line() -> None:
    # Mon 16 (two messages), Tue 17 (none), Wed 18 (four), in Berlin.
    stamps = [1_794_816_000 + hours * 3600 for hours in (1, 2, 49, 50, 51, 52)]
    messages = [
        {"type": "message", "user": "U1", "text": "hi", "ts": f"{stamp}.000000"} for stamp in stamps
    ]
    digest = digest_of({"C1": messages})
    assert digest.days()[:3] == [("2026-11-16", 2), ("2026-11-17", 0), ("2026-11-18", 4)]
    summary = everything(slack_messages(digest, NAMES)[:1])
    assert "*Activity* ▅▁█▁▁▁▁▁ Mon 16 – Mon 23 · busiest Wed 18 (4)" in summary


def test_a_replys_permalink_opens_its_thread() -> None:
    assert permalink("https://acme.slack.com/", "C1", "2.000200", "1.000100") == (
        "https://acme.slack.com/archives/C1/p2000200?thread_ts=1.000100&cid=C1"
    )
    assert permalink("https://acme.slack.com/", "C1", "1.000100", "1.000100") == (
        "https://acme.slack.com/archives/C1/p1000100"
    )
