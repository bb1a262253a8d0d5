"""The outline: what a digest shows, in order, as plain text, for Slack and email alike.

Users' Slack text is made plain (`mrkdwn.plain`) here, once; each output escapes it its own way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from jobs.digest.model import ChannelDigest, Digest, Post, Stats, Window
from jobs.slack.mrkdwn import plain

# Bounds on one line, so that any single line, escaped, fits in a Slack section.
MAX_LABEL = 300
MAX_NAME = 80
PER_LINE = 5  # members named on one line
DASH = "\N{EN DASH}"

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


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


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
        title=digest.title,
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
