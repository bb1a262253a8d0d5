# Other scripts' punctuation is what these texts are made of.
# ruff: noqa: RUF001
"""What people post that a digest must survive: huge, emoji-only, link-only and right-to-left
messages, tombstones, replies of threads begun before the window, channels with no person in
them, and hostile text in every section. Each gives a digest within Slack's limits, or says the
window was quiet, with nothing live that the author did not mean to be."""

from __future__ import annotations

import re
from typing import Any

import regex

from jobs.digest.model import SECTIONS, Message
from jobs.digest.render.blocks import MAX_BLOCKS, MAX_MESSAGE, slack_messages
from tests.digest.test_email import mail, parts
from tests.digest.test_render import HOSTILE, NAMES, digest_of, everything, message

HUGE = "word " * 8_000  # 40,000 characters
BEFORE = "1789990000.000000"  # a thread begun before the window's first message


def people_said(texts: list[str], **extra: Any) -> list[Message]:
    return [message(n, text, f"U{n % 3 + 1}", **extra) for n, text in enumerate(texts, start=10)]


BAD = [
    *people_said(
        [
            HUGE,
            "🎉🎉🎉 👍🏽 👨‍👩‍👧‍👦",
            "<https://a.example/x> <https://b.example/y|y> <https://a.example/x>",
            "我们决定使用 Postgres 进行导出迁移，" * 40,
            "قررنا استخدام Postgres لنقل الصادرات " * 30,
            "החלטנו להשתמש ב-Postgres להעברת הייצוא " * 30,
            "Decision: we'll go with " + HOSTILE,
            "<@U2> can you fix <!channel> by Friday? " + HOSTILE,
            "TODO: " + "🧑🏽‍💻" * 300,
            "e\u0301" * 500 + " fixed",
        ]
    ),
    message(40, HUGE, "U2", reply_count=1, reply_users_count=1),
    message(44, "edited: we decided to ship it", "U1", edited={"user": "U1", "ts": "1.0"}),
    message(41, "This message was deleted.", "USLACKBOT", subtype="tombstone", hidden=True),
    message(
        42,
        "Decision: we'll go with the old plan",
        "U2",
        subtype="thread_broadcast",
        thread_ts=BEFORE,
    ),
    message(43, HOSTILE, "U3", reply_count=4, reply_users_count=3),
]


def bad_digest() -> Any:
    return digest_of({"C1": BAD, "C2": [message(1, "deploy finished", "B1", bot_id="B1")]})


def test_every_section_of_a_bad_window_renders_within_slacks_limits() -> None:
    messages = slack_messages(bad_digest(), NAMES)
    assert messages
    for part in messages:
        assert len(part.blocks) <= MAX_BLOCKS
        assert len(part.text) <= MAX_MESSAGE
    summary = " ".join(
        t for b in messages[0].blocks for t in re.findall(r'"text": "([^"]*)', repr(b))
    )
    assert len(summary) <= 2_500
    shown = everything(messages)
    # Nobody is pinged and no link is forged, in any section.
    assert not re.search(r"<!(channel|here|everyone)>|<@U|<https://evil", shown)
    assert "&lt;script&gt;" in shown and "<script>" not in shown


def test_excerpts_of_any_script_are_whole_graphemes() -> None:
    shown = everything(slack_messages(bad_digest(), NAMES))
    for line in shown.splitlines():
        # A cut never leaves half an emoji, a lone combining mark or half a surrogate.
        assert not regex.search(r"^\p{M}|\u200d(?!\p{Extended_Pictographic})", line), line
        assert "\ufffd" not in line


def test_a_decision_in_a_reply_to_an_older_thread_links_into_that_thread() -> None:
    digest = bad_digest()
    (channel,) = [c for c in digest.channels if c.channel == "C1"]
    old = [d for d in channel.decisions if d.text.startswith("Decision: we'll go with the old")]
    assert old and old[0].thread == BEFORE
    assert f"thread_ts={BEFORE}" in (old[0].permalink or "")


def test_a_channel_with_no_human_message_says_so_and_the_rest_still_shows() -> None:
    digest = bad_digest()
    quiet = next(c for c in digest.channels if c.channel == "C2")
    assert quiet.stats.messages == 0
    text, _ = parts(mail(digest))
    assert "Decisions" in text and "Action items" in text and "#c2" in text


def test_a_window_with_only_bots_is_quiet() -> None:
    digest = digest_of({"C2": [message(1, "deploy finished", "B1", bot_id="B1")]})
    assert digest.quiet


def test_the_mail_of_a_bad_window_escapes_everything() -> None:
    text, html = parts(mail(bad_digest()))
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'href="https://evil.example' not in html
    assert "word word" in text  # the huge thread is shown, excerpted
    assert len(text) < 40_000 and len(html) < 200_000


def test_every_section_can_be_shown_alone() -> None:
    for section in SECTIONS:
        messages = slack_messages(digest_of({"C1": BAD}, sections=(section,)), NAMES)
        assert messages and all(len(m.blocks) <= MAX_BLOCKS for m in messages)
