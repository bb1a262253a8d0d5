"""The digest as data: what summarize produces and render consumes. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

# A message exactly as `conversations.history` returns it.
Message = dict[str, Any]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SECTIONS = ("summary", "threads", "reactions", "people", "questions", "links", "members")


@dataclass(frozen=True)
class Window:
    """The half-open interval `[start, end)` a digest covers, and the zone it is shown in."""

    start: datetime  # timezone-aware
    end: datetime  # timezone-aware
    timezone: str = "UTC"

    @property
    def oldest(self) -> str:
        """Just before `start` as a Slack `ts`: `conversations.history`'s bounds are exclusive."""
        return slack_ts(self.start - timedelta(microseconds=1))

    @property
    def latest(self) -> str:
        """`end` as a Slack `ts`, which the window excludes."""
        return slack_ts(self.end)

    def bounds(self) -> tuple[str, str]:
        """Both ends in ISO-8601, as run records keep them."""
        return self.start.isoformat(), self.end.isoformat()


def slack_ts(moment: datetime) -> str:
    """An instant as Slack writes a `ts`, computed in integers so no float rounding creeps in."""
    micros = (moment - EPOCH) // timedelta(microseconds=1)
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


@dataclass(frozen=True)
class Stats:
    """Headline counts of human activity; bots, joins and other noise are not in them."""

    messages: int = 0
    threads: int = 0
    people: int = 0
    reactions: int = 0
    files: int = 0
    links: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "messages": self.messages,
            "threads": self.threads,
            "people": self.people,
            "reactions": self.reactions,
            "files": self.files,
            "links": self.links,
        }


@dataclass(frozen=True)
class Post:
    """A message worth pointing at. `text` is the raw Slack text (mrkdwn), already excerpted."""

    channel: str
    ts: str
    user: str
    text: str
    replies: int = 0
    repliers: int = 0
    reactions: int = 0
    permalink: str | None = None


@dataclass(frozen=True)
class Link:
    url: str
    channel: str
    ts: str
    user: str


@dataclass(frozen=True)
class SharedFile:
    name: str
    channel: str
    ts: str
    user: str
    permalink: str | None = None


@dataclass(frozen=True)
class ChannelDigest:
    """One channel's part of a digest. User fields hold Slack user IDs; render names them."""

    channel: str  # channel ID
    name: str  # channel name without '#'
    stats: Stats
    threads: list[Post] = field(default_factory=list)  # by distinct repliers, then replies
    reacted: list[Post] = field(default_factory=list)  # by reaction count
    people: list[tuple[str, int]] = field(default_factory=list)  # (user, messages), most first
    questions: list[Post] = field(default_factory=list)  # asked, no reply
    links: list[Link] = field(default_factory=list)
    files: list[SharedFile] = field(default_factory=list)
    joined: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    bot_messages: int = 0  # kept out of `stats`, shown as noise


@dataclass(frozen=True)
class Digest:
    """Everything one run delivers, in the order the schedule's `sections` asks for."""

    title: str  # heads the post and the mail's subject: "eng-weekly digest"
    window: Window
    channels: list[ChannelDigest]
    totals: Stats
    previous: Stats | None = None  # the same schedule's last run, for the change
    sections: tuple[str, ...] = SECTIONS

    @property
    def quiet(self) -> bool:
        """Nothing a person did in the window: `skip_if_quiet` sends nothing."""
        return self.totals.messages == 0 and not any(c.joined or c.left for c in self.channels)

    def posts(self) -> list[Post]:
        """Every post the digest points at, for resolving permalinks in one pass."""
        return [
            post
            for channel in self.channels
            for post in (*channel.threads, *channel.reacted, *channel.questions)
        ]
