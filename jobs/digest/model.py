"""The digest as data: what summarize produces and render consumes. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

# A message of a history page as the client decodes it (`jobs.slack.api.HistoryMessage`).
Message = dict[str, Any]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SECTIONS = (
    "summary",
    "highlights",
    "decisions",
    "actions",
    "questions",
    "topics",
    "activity",
    "threads",
    "reactions",
    "people",
    "links",
    "members",
)
# How a digest's prose summary is made: always extractive; `llm` adds a generated one on top.
SUMMARIZERS = ("extractive", "llm")


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
    """A message worth pointing at. `text` is the raw Slack text (mrkdwn), already excerpted;
    `thread` is its parent's ts when it is a reply."""

    channel: str
    ts: str
    user: str
    text: str
    replies: int = 0
    repliers: int = 0
    reactions: int = 0
    permalink: str | None = None
    thread: str | None = None


@dataclass(frozen=True)
class Highlight:
    """A conversation that mattered: its opening, the reply that settled it, who took part."""

    post: Post
    outcome: Post | None = None
    people: tuple[str, ...] = ()  # user IDs, the opener first


@dataclass(frozen=True)
class ActionItem:
    post: Post
    owner: str  # user ID
    done: bool = False


@dataclass(frozen=True)
class Link:
    """A URL and the latest message it came with; `shares` counts the messages sharing it."""

    url: str
    post: Post
    shares: int = 1


@dataclass(frozen=True)
class SharedFile:
    name: str
    post: Post
    shares: int = 1
    permalink: str | None = None  # the file's own page, from Slack


@dataclass(frozen=True)
class Topic:
    """A term of the window's conversation: in `count` messages, and in `previous` of the last
    run's (0: new; None: there is no last run to compare with)."""

    term: str
    count: int
    previous: int | None = None


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
    links: list[Link] = field(default_factory=list)  # most shared first
    files: list[SharedFile] = field(default_factory=list)
    more_links: int = 0  # distinct URLs not in `links`
    more_files: int = 0
    joined: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    bot_messages: int = 0  # kept out of `stats`, shown as noise
    highlights: list[Highlight] = field(default_factory=list)
    decisions: list[Post] = field(default_factory=list)
    actions: list[ActionItem] = field(default_factory=list)  # open ones first
    topics: list[Topic] = field(default_factory=list)
    terms: dict[str, int] | None = None  # this run's term counts, for the next; None: no topics
    days: list[tuple[str, int]] = field(default_factory=list)  # (ISO date, human messages)


@dataclass(frozen=True)
class Digest:
    """Everything one run delivers, in the order the schedule's `sections` asks for."""

    title: str  # heads the post and the mail's subject: "Engineering weekly"
    window: Window
    channels: list[ChannelDigest]
    totals: Stats
    previous: Stats | None = None  # the same schedule's last run, for the change
    sections: tuple[str, ...] = SECTIONS
    generated: str | None = None  # the LLM's summary, shown marked as generated

    @property
    def quiet(self) -> bool:
        """Nothing a person did in the window: `skip_if_quiet` sends nothing."""
        return self.totals.messages == 0 and not any(c.joined or c.left for c in self.channels)

    def days(self) -> list[tuple[str, int]]:
        """Human messages per day of the window, every channel together."""
        totals: dict[str, int] = {}
        for channel in self.channels:
            for day, count in channel.days:
                totals[day] = totals.get(day, 0) + count
        return sorted(totals.items())

    def posts(self) -> list[Post]:
        """Every post the digest points at, for resolving permalinks and names in one pass."""
        found: list[Post] = []
        for c in self.channels:
            found += [*c.threads, *c.reacted, *c.questions, *c.decisions]
            found += [link.post for link in c.links] + [f.post for f in c.files]
            found += [item.post for item in c.actions]
            for highlight in c.highlights:
                found.append(highlight.post)
                if highlight.outcome is not None:
                    found.append(highlight.outcome)
        return found

    def people(self) -> set[str]:
        """Every user the digest names."""
        users = {post.user for post in self.posts()}
        for c in self.channels:
            users |= {user for user, _ in c.people} | set(c.joined) | set(c.left)
            users |= {item.owner for item in c.actions}
            users |= {user for h in c.highlights for user in h.people}
        users.discard("")
        return users
