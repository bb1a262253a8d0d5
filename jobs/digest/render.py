"""Render: a digest as Slack Block Kit messages, from an outline the email templates share.

Users' Slack text is turned into plain text (`plain`) before anything shows it, and escaped for
each output, so a digest can neither ping `@channel` nor carry a link a user forged. What does
not fit Slack's limits continues in further messages (thread replies); nothing is cut.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from jobs.digest.model import ChannelDigest, Digest, Post, Stats, Window

MAX_BLOCKS = 50
MAX_SECTION = 3_000
MAX_HEADER = 150
# Slack refuses messages near 13k characters of block text (`msg_blocks_too_long`).
MAX_MESSAGE = 12_000
# Bounds on one line, so that any single line, escaped, fits in a section.
MAX_LABEL = 300
MAX_NAME = 80
PER_LINE = 5  # members named on one line
DASH = "\N{EN DASH}"

MARKUP = re.compile(r"<([^<>]*)>|&(amp|lt|gt);")
ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}
BROADCASTS = frozenset({"channel", "here", "everyone"})

FIGURES = {
    "messages": "Messages",
    "people": "People",
    "threads": "Threads",
    "reactions": "Reactions",
    "files": "Files",
    "links": "Links",
}
TITLES = {
    "summary": "Activity",
    "threads": "Top threads",
    "reactions": "Most reacted",
    "people": "Most active",
    "questions": "Unanswered questions",
    "links": "Links and files",
    "members": "Members",
}

Block = dict[str, Any]


# Plain text from Slack's markup: shared by every output.


def plain(text: str, names: Mapping[str, str]) -> str:
    """Slack mrkdwn as one line of readable text: mentions named, links spelled out, none live."""

    def token(match: re.Match[str]) -> str:
        content, entity = match.groups()
        return ENTITIES[entity] if entity else markup(content, names)

    return " ".join(MARKUP.sub(token, text).split())


def markup(content: str, names: Mapping[str, str]) -> str:
    """One `<…>` of Slack markup as the words it shows."""
    target, _, label = (unescape(part) for part in content.partition("|"))
    kind, rest = target[:1], target[1:]
    if kind == "@":
        return "@" + (names.get(rest) or label or rest)
    if kind == "#":
        return "#" + (names.get(rest) or label or rest)
    if kind == "!":
        return "@" + rest if rest in BROADCASTS else label or "@" + rest.partition("^")[0]
    if ":" in target:
        return f"{label} ({target})" if label and label != target else target
    return f"<{unescape(content)}>"


def unescape(text: str) -> str:
    return MARKUP.sub(lambda m: ENTITIES[m[2]] if m[2] else m[0], text)


def escape(text: str) -> str:
    """Plain text made inert in Slack mrkdwn: `&`, `<` and `>` as Slack's entities."""
    return html.escape(text, quote=False)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# The outline: what a digest shows, as plain text, for Slack and email alike.


@dataclass(frozen=True)
class Item:
    """One line: `label` (linked to `url`, one of our permalinks, if any) and a `detail`."""

    label: str
    url: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class Section:
    title: str
    items: tuple[Item, ...]


@dataclass(frozen=True)
class ChannelOutline:
    name: str  # "#eng"
    sections: tuple[Section, ...]


@dataclass(frozen=True)
class Figure:
    label: str  # "Messages"
    value: str  # "120 (▲ 20%)"


@dataclass(frozen=True)
class Outline:
    title: str  # "eng-weekly digest"
    dates: str  # the days covered, as `dates` writes them
    window: str  # both ends to the minute, and the zone
    figures: tuple[Figure, ...]
    channels: tuple[ChannelOutline, ...]

    @property
    def summary(self) -> str:
        """The digest in one line, for notifications and plain-text fallbacks."""
        figures = ", ".join(f"{f.label}: {f.value}" for f in self.figures)
        return f"{self.title}, {self.dates}. {figures or 'No activity.'}"


def outline(digest: Digest, names: Mapping[str, str]) -> Outline:
    """What the digest shows, in order, with every user's text already plain."""
    return Outline(
        title=f"{digest.schedule} digest",
        dates=dates(digest.window),
        window=window_text(digest.window),
        figures=figures(digest.totals, digest.previous),
        channels=tuple(channel_outline(c, digest.sections, names) for c in digest.channels),
    )


def window_text(window: Window) -> str:
    zone = ZoneInfo(window.timezone)
    start, end = window.start.astimezone(zone), window.end.astimezone(zone)
    return f"{moment(start)} {DASH} {moment(end)} ({window.timezone})"


def moment(when: datetime) -> str:
    return f"{when:%a} {when.day} {when:%b %Y %H:%M}"


def dates(window: Window) -> str:
    """The days the window covers, in its zone, shortest form ("16" en dash "23 Nov 2026")."""
    zone = ZoneInfo(window.timezone)
    first = window.start.astimezone(zone)
    last = (window.end - timedelta(microseconds=1)).astimezone(zone)  # the end is excluded
    if (first.year, first.month) != (last.year, last.month):
        start = (
            f"{first.day} {first:%b}" if first.year == last.year else f"{first.day} {first:%b %Y}"
        )
        return f"{start} {DASH} {last.day} {last:%b %Y}"
    days = f"{first.day}" if first.day == last.day else f"{first.day}{DASH}{last.day}"
    return f"{days} {first:%b %Y}"


def figures(totals: Stats, previous: Stats | None) -> tuple[Figure, ...]:
    """The non-zero headline counts, each with its change since the previous digest."""
    now = totals.as_dict()
    before = previous.as_dict() if previous else {}
    return tuple(
        Figure(label, f"{now[key]}{change(now[key], before.get(key))}")
        for key, label in FIGURES.items()
        if now[key]
    )


def change(now: int, before: int | None) -> str:
    if before is None:
        return ""
    if before == 0:
        return " (new)"
    percent = round((now - before) * 100 / before)
    if percent == 0:
        return " (no change)"
    return f" ({'▲' if percent > 0 else '▼'} {abs(percent)}%)"


def channel_outline(
    channel: ChannelDigest, sections: Sequence[str], names: Mapping[str, str]
) -> ChannelOutline:
    shown = tuple(
        Section(TITLES[name], items) for name in sections if (items := ITEMS[name](channel, names))
    )
    quiet = (Section(TITLES["summary"], (Item("Nothing to report in this window."),)),)
    return ChannelOutline("#" + clip(channel.name, MAX_NAME), shown or quiet)


def who(user: str, names: Mapping[str, str]) -> str:
    return "@" + clip(names.get(user) or user, MAX_NAME)


def count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def said(post: Post, names: Mapping[str, str]) -> str:
    return clip(plain(post.text, names), MAX_LABEL) or "(no text)"


def activity(channel: ChannelDigest, names: Mapping[str, str]) -> tuple[Item, ...]:
    stats = channel.stats
    if stats.messages:
        parts = [
            f"{count(stats.messages, 'message')} from {count(stats.people, 'person', 'people')}"
        ]
        parts += [
            count(n, one)
            for n, one in (
                (stats.threads, "thread"),
                (stats.reactions, "reaction"),
                (stats.files, "file"),
                (stats.links, "link"),
            )
            if n
        ]
        line = " · ".join(parts)
    else:
        line = "No messages from people"
    bots = (
        f"{count(channel.bot_messages, 'bot message')} not counted" if channel.bot_messages else ""
    )
    return (Item(line, detail=bots),)


def threads(channel: ChannelDigest, names: Mapping[str, str]) -> tuple[Item, ...]:
    return tuple(
        Item(
            said(p, names),
            p.permalink,
            f"{who(p.user, names)} · {count(p.replies, 'reply', 'replies')}"
            f" from {count(p.repliers, 'person', 'people')}",
        )
        for p in channel.threads
    )


def reactions(channel: ChannelDigest, names: Mapping[str, str]) -> tuple[Item, ...]:
    return tuple(
        Item(
            said(p, names), p.permalink, f"{who(p.user, names)} · {count(p.reactions, 'reaction')}"
        )
        for p in channel.reacted
    )


def people(channel: ChannelDigest, names: Mapping[str, str]) -> tuple[Item, ...]:
    return tuple(Item(who(user, names), detail=count(n, "message")) for user, n in channel.people)


def questions(channel: ChannelDigest, names: Mapping[str, str]) -> tuple[Item, ...]:
    return tuple(Item(said(p, names), p.permalink, who(p.user, names)) for p in channel.questions)


def links(channel: ChannelDigest, names: Mapping[str, str]) -> tuple[Item, ...]:
    # Users' URLs stay text: only our own permalinks become links.
    shared = (
        Item(clip(link.url, MAX_LABEL), detail=who(link.user, names)) for link in channel.links
    )
    files = (
        Item(clip(f.name, MAX_LABEL), f.permalink, f"file from {who(f.user, names)}")
        for f in channel.files
    )
    return (*shared, *files)


def members(channel: ChannelDigest, names: Mapping[str, str]) -> tuple[Item, ...]:
    return tuple(
        Item(label, detail=", ".join(who(user, names) for user in users[i : i + PER_LINE]))
        for label, users in (("Joined", channel.joined), ("Left", channel.left))
        for i in range(0, len(users), PER_LINE)
    )


ITEMS: dict[str, Callable[[ChannelDigest, Mapping[str, str]], tuple[Item, ...]]] = {
    "summary": activity,
    "threads": threads,
    "reactions": reactions,
    "people": people,
    "questions": questions,
    "links": links,
    "members": members,
}


# Slack Block Kit.


@dataclass(frozen=True)
class SlackMessage:
    text: str
    blocks: list[dict[str, Any]]


def slack_messages(digest: Digest, names: Mapping[str, str]) -> list[SlackMessage]:
    """The digest post, then as many thread replies as Slack's limits need; nothing is cut."""
    shown = outline(digest, names)
    pages = paginate(units(shown), shown.title)
    return [
        SlackMessage(escape(fallback(shown, part, len(pages))), blocks)
        for part, blocks in enumerate(pages)
    ]


def fallback(shown: Outline, part: int, parts: int) -> str:
    if part == 0:
        return shown.summary
    return f"{shown.title}, {shown.dates} (continued, part {part + 1} of {parts})"


# A unit is blocks that go in one message, and the channel it continues (none for a new start).
Unit = tuple[str | None, list[Block]]


def units(shown: Outline) -> Iterator[Unit]:
    yield None, intro(shown)
    for channel in shown.channels:
        heading = [{"type": "divider"}, mrkdwn(f"*{escape(channel.name)}*")]
        texts = [text for section in channel.sections for text in section_texts(section)]
        yield None, [*heading, mrkdwn(texts[0])]
        for text in texts[1:]:
            yield channel.name, [mrkdwn(text)]


def intro(shown: Outline) -> list[Block]:
    header = {"type": "header", "text": plain_text(clip(shown.title, MAX_HEADER))}
    context = {"type": "context", "elements": [mrkdwn_text(escape(shown.window))]}
    fields = [mrkdwn_text(f"*{f.label}:* {escape(f.value)}") for f in shown.figures]
    stats = {"type": "section", "fields": fields} if fields else mrkdwn("No activity from people.")
    return [header, context, stats]


def section_texts(section: Section) -> list[str]:
    """The section as mrkdwn texts of at most `MAX_SECTION` characters, split between lines."""
    title = f"*{escape(section.title)}*"
    texts, text = [], title
    for line in map(bullet, section.items):
        if len(text) + 1 + len(line) > MAX_SECTION:
            texts.append(text)
            text = f"{title} (continued)"
        text += "\n" + line
    return [*texts, text]


def bullet(item: Item) -> str:
    label = escape(item.label)
    if item.url:
        label = f"<{escape(item.url)}|{label}>"
    return f"• {label} — {escape(item.detail)}" if item.detail else f"• {label}"


def paginate(units: Iterator[Unit], title: str) -> list[list[Block]]:
    """Units packed into messages within the block and character limits."""
    pages: list[list[Block]] = []
    page: list[Block] = []
    size = 0
    for continues, blocks in units:
        needed = text_size(blocks)
        if page and (len(page) + len(blocks) > MAX_BLOCKS or size + needed > MAX_MESSAGE):
            pages.append(page)
            note = f"_{escape(title)}, continued_" + (
                f" · *{escape(continues)}*" if continues else ""
            )
            page = [{"type": "context", "elements": [mrkdwn_text(note)]}]
            size = text_size(page)
        page.extend(blocks)
        size += needed
    return [*pages, page]


def text_size(blocks: list[Block]) -> int:
    """Characters of text in the blocks, as Slack counts toward a message's limit."""
    texts = (
        part["text"]
        for block in blocks
        for part in (block.get("text"), *block.get("fields", ()), *block.get("elements", ()))
        if part
    )
    return sum(len(text) for text in texts)


def mrkdwn(text: str) -> Block:
    return {"type": "section", "text": mrkdwn_text(text)}


def mrkdwn_text(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def plain_text(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}
