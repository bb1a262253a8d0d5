"""The outline: what a digest shows, in order, as plain text, for Slack and email alike.

A digest opens with its summary (figures and their trend, a generated summary when there is one,
the highlights, decisions and action items of every channel, a line per channel, the activity
chart), then the details of each channel. Users' Slack text is made plain (`mrkdwn.plain`) here,
once; each output escapes it its own way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from jobs.digest import activity
from jobs.digest.model import ChannelDigest, Digest, Post, Stats, Window
from jobs.slack.mrkdwn import plain

# Bounds on one line, so that any single line, escaped, fits in a Slack section.
MAX_LABEL = 300
MAX_NAME = 80
PER_LINE = 5  # members named on one line
DASH = "\N{EN DASH}"
# How many of each the summary shows across channels; the rest are in each channel's part.
SUMMARY_ITEMS = {"highlights": 3, "decisions": 5, "actions": 5}

FIGURES = {
    "messages": "Messages",
    "people": "People",
    "threads": "Threads",
    "reactions": "Reactions",
    "files": "Files",
    "links": "Links",
}
TITLES = {
    "highlights": "Highlights",
    "decisions": "Decisions",
    "actions": "Action items",
    "questions": "Unanswered questions",
    "topics": "Topics",
    "activity": "Activity",
    "threads": "Top threads",
    "reactions": "Most reacted",
    "people": "Most active",
    "links": "Links and files",
    "members": "Members",
}


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@dataclass(frozen=True)
class Item:
    """One line: `label` (linked to `url`, one of our permalinks, if any), a `detail`, and a
    `note` shown under it (a highlight's outcome, linked to the reply at `note_url`). `done`
    marks an action item."""

    label: str
    url: str | None = None
    detail: str = ""
    note: str = ""
    done: bool | None = None
    note_url: str | None = None


@dataclass(frozen=True)
class Section:
    title: str
    items: tuple[Item, ...]
    more: str = ""  # "+3 more", said after the items


@dataclass(frozen=True)
class Chart:
    """Human messages per day (or week) of the window, in its zone."""

    labels: tuple[str, ...]  # "Mon 16"
    values: tuple[int, ...]

    @property
    def line(self) -> str:
        """The chart in one line: a sparkline between its first and last day, and the peak."""
        peak = max(range(len(self.values)), key=lambda i: (self.values[i], -i))
        span = (
            self.labels[0]
            if len(self.labels) == 1
            else f"{self.labels[0]} {DASH} {self.labels[-1]}"
        )
        busiest = f"busiest {self.labels[peak]} ({self.values[peak]})" if self.values[peak] else ""
        return " · ".join(
            part for part in (f"{activity.sparkline(self.values)} {span}", busiest) if part
        )

    def bars(self, tallest: int) -> list[tuple[str, int, int]]:
        """Each bar's label, value and height for a chart `tallest` high; a day with messages
        shows at least 2."""
        top = max(self.values, default=0) or 1
        return [
            (label, value, max(2, round(value * tallest / top)) if value else 0)
            for label, value in zip(self.labels, self.values, strict=True)
        ]


@dataclass(frozen=True)
class ChannelOutline:
    name: str  # "#eng"
    line: str  # the channel in one line: "42 messages ▲ 10% from 6 people · 3 threads"
    sections: tuple[Section, ...]


@dataclass(frozen=True)
class Figure:
    label: str  # "Messages"
    value: str  # "120"
    trend: str = ""  # "▲ 20%", or nothing when there is no change or nothing to compare

    @property
    def text(self) -> str:
        return f"{self.value} {self.trend}" if self.trend else self.value


@dataclass(frozen=True)
class Outline:
    title: str  # "Engineering weekly"
    dates: str  # the days covered, as `dates` writes them
    window: str  # both ends to the minute, and the zone
    figures: tuple[Figure, ...]
    generated: str | None  # the LLM's summary, plain text
    summary: tuple[Section, ...]  # highlights, decisions and action items across channels
    channel_lines: tuple[Item, ...]
    chart: Chart | None
    channels: tuple[ChannelOutline, ...]
    quiet: bool  # no message from a person in any channel

    @property
    def headline(self) -> str:
        """The digest in one line, for notifications and plain-text fallbacks."""
        figures = ", ".join(f"{f.label}: {f.text}" for f in self.figures)
        return f"{self.title}, {self.dates}. {figures or 'No activity.'}"


def outline(digest: Digest, names: Mapping[str, str]) -> Outline:
    """What the digest shows, in order, with every user's text already plain."""
    shown = set(digest.sections)
    channels = tuple(channel_outline(c, digest, names) for c in digest.channels)
    summary = tuple(
        section
        for name in ("highlights", "decisions", "actions")
        if name in shown and (section := across(name, digest, names)).items
    )
    return Outline(
        title=digest.title,
        dates=dates(digest.window),
        window=window_text(digest.window),
        figures=figures(digest.totals, digest.previous) if "summary" in shown else (),
        generated=digest.generated,
        summary=summary,
        channel_lines=tuple(Item(c.name, detail=c.line) for c in channels),
        chart=chart(digest.days()) if "activity" in shown else None,
        channels=channels,
        quiet=digest.totals.messages == 0,
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
    """The headline counts that are not zero (or were not), each with its trend."""
    now = totals.as_dict()
    before = previous.as_dict() if previous else {}
    return tuple(
        Figure(label, f"{now[key]:,}", trend(now[key], before.get(key)))
        for key, label in FIGURES.items()
        if now[key] or before.get(key)
    )


def trend(now: int, before: int | None) -> str:
    """▲ or ▼ and the change in percent; nothing without a previous run or without a change."""
    if before is None or now == before:
        return ""
    if before == 0:
        return "▲ new"
    percent = round((now - before) * 100 / before)
    if percent == 0:
        return ""
    return f"{'▲' if percent > 0 else '▼'} {abs(percent)}%"


def chart(days: Sequence[tuple[str, int]]) -> Chart | None:
    if not days:
        return None
    bars = activity.buckets(days)
    return Chart(tuple(day_label(day) for day, _ in bars), tuple(count for _, count in bars))


def day_label(iso: str) -> str:
    day = date.fromisoformat(iso)
    return f"{day:%a} {day.day}"


def channel_outline(
    channel: ChannelDigest, digest: Digest, names: Mapping[str, str]
) -> ChannelOutline:
    shown = tuple(
        Section(TITLES[name], items, more(channel, name))
        for name in digest.sections
        if name in ITEMS and (items := ITEMS[name](channel, names))
    )
    quiet = (Section(TITLES["activity"], (Item("Nothing to report in this window."),)),)
    return ChannelOutline("#" + clip(channel.name, MAX_NAME), channel_line(channel), shown or quiet)


def channel_line(channel: ChannelDigest) -> str:
    stats = channel.stats
    if not stats.messages:
        return "no messages from people"
    parts = [f"{count(stats.messages, 'message')} from {count(stats.people, 'person', 'people')}"]
    parts += [
        count(n, one)
        for n, one in ((len(channel.decisions), "decision"), (stats.threads, "thread"))
        if n
    ]
    open_items = sum(not a.done for a in channel.actions)
    if open_items:
        parts.append(count(open_items, "open action item"))
    return " · ".join(parts)


def more(channel: ChannelDigest, name: str) -> str:
    extra = {"links": channel.more_links + channel.more_files}.get(name, 0)
    return f"+{extra} more" if extra else ""


def across(name: str, digest: Digest, names: Mapping[str, str]) -> Section:
    """A section of the summary: the first items of every channel's, each saying where."""
    items: list[Item] = []
    for channel in digest.channels:
        where = "#" + clip(channel.name, MAX_NAME)
        for item in ITEMS[name](channel, names):
            items.append(replace(item, detail=f"{item.detail} · {where}"))
    limit = SUMMARY_ITEMS[name]
    if name == "actions":
        items.sort(key=lambda item: bool(item.done))  # open first, across channels too
    extra = len(items) - limit
    return Section(TITLES[name], tuple(items[:limit]), f"+{extra} more" if extra > 0 else "")


def who(user: str, names: Mapping[str, str]) -> str:
    """A person by name, never a mention: the name is text, so nobody is pinged."""
    return "@" + clip(names.get(user) or user, MAX_NAME)


def count(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else many or one + 's'}"


def said(post: Post, names: Mapping[str, str], limit: int = MAX_LABEL) -> str:
    return clip(plain(post.text, names), limit) or "(no text)"


def highlights(channel: ChannelDigest, names: Mapping[str, str]) -> tuple[Item, ...]:
    items = []
    for highlight in channel.highlights:
        post = highlight.post
        people = ", ".join(who(user, names) for user in highlight.people[:PER_LINE])
        others = len(highlight.people) - PER_LINE
        if others > 0:
            people += f" +{others}"
        replies = count(post.replies, "reply", "replies")
        outcome = highlight.outcome
        note = f"→ {who(outcome.user, names)}: {said(outcome, names, 200)}" if outcome else ""
        link = outcome.permalink if outcome else None
        items.append(
            Item(said(post, names), post.permalink, f"{people} · {replies}", note, note_url=link)
        )
    return tuple(items)


def decisions(channel: ChannelDigest, names: Mapping[str, str]) -> tuple[Item, ...]:
    return tuple(Item(said(p, names), p.permalink, who(p.user, names)) for p in channel.decisions)


def actions(channel: ChannelDigest, names: Mapping[str, str]) -> tuple[Item, ...]:
    return tuple(
        Item(
            said(a.post, names),
            a.post.permalink,
            who(a.owner, names)
            + ("" if a.owner == a.post.user else f" (asked by {who(a.post.user, names)})"),
            done=a.done,
        )
        for a in channel.actions
    )


def topics(channel: ChannelDigest, names: Mapping[str, str]) -> tuple[Item, ...]:
    items = []
    for topic in channel.topics:
        detail = count(topic.count, "message")
        if topic.previous == 0:
            detail += " · new"
        elif topic.previous is not None:
            detail += f" · {trend(topic.count, topic.previous)} (from {topic.previous})"
        items.append(Item(clip(topic.term, MAX_NAME), detail=detail))
    return tuple(items)


def activity_items(channel: ChannelDigest, names: Mapping[str, str]) -> tuple[Item, ...]:
    stats = channel.stats
    parts = [channel_line(channel)]
    parts += [
        count(n, one)
        for n, one in ((stats.reactions, "reaction"), (stats.files, "file"), (stats.links, "link"))
        if n
    ]
    bots = (
        f"{count(channel.bot_messages, 'bot message')} not counted" if channel.bot_messages else ""
    )
    shown = chart(channel.days)
    line = " · ".join(parts)
    if shown is not None and stats.messages:
        return (Item(line, detail=bots), Item(shown.line))
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
        Item(
            clip(link.url, MAX_LABEL),
            link.post.permalink,
            shares(link.shares, who(link.post.user, names)),
            said(link.post, names, 200),
        )
        for link in channel.links
    )
    files = (
        Item(
            clip(f.name, MAX_LABEL),
            f.permalink or f.post.permalink,
            shares(f.shares, f"file from {who(f.post.user, names)}"),
            said(f.post, names, 200) if f.post.text else "",
        )
        for f in channel.files
    )
    return (*shared, *files)


def shares(n: int, by: str) -> str:
    return f"{by} · shared {n} times" if n > 1 else by


def members(channel: ChannelDigest, names: Mapping[str, str]) -> tuple[Item, ...]:
    return tuple(
        Item(label, detail=", ".join(who(user, names) for user in users[i : i + PER_LINE]))
        for label, users in (("Joined", channel.joined), ("Left", channel.left))
        for i in range(0, len(users), PER_LINE)
    )


ITEMS: dict[str, Callable[[ChannelDigest, Mapping[str, str]], tuple[Item, ...]]] = {
    "highlights": highlights,
    "decisions": decisions,
    "actions": actions,
    "questions": questions,
    "topics": topics,
    "activity": activity_items,
    "threads": threads,
    "reactions": reactions,
    "people": people,
    "links": links,
    "members": members,
}
