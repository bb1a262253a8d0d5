"""Summarize: fold a channel's messages, one at a time, into the figures and top lists of a digest.

A tally keeps counters and bounded top-k structures only, so its memory does not grow with the
channel's traffic, and it round-trips through JSON, so a run stopped by a rate limit can resume.
Every top list is keyed by values plus the message's `ts`, so the result does not depend on the
order messages arrive in.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from jobs.digest.model import (
    SECTIONS,
    ChannelDigest,
    Digest,
    Link,
    Message,
    Post,
    SharedFile,
    Stats,
    Window,
)

# Subtypes written by people; every other subtype is Slack's own noise (topic, rename, …).
HUMAN = frozenset({"thread_broadcast", "file_share", "me_message"})
EXCERPT = 200
LINK = re.compile(r"<(https?://[^|>\s]+)(?:\|[^>]*)?>")
# A "?" that ends a sentence, not one inside a URL's query string.
QUESTION = re.compile(r"\?(?:[\s)\]\"'”*_~!]|$)")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)

Key = tuple[Any, ...]
COUNTS = ("messages", "bot_messages", "threads", "reactions", "links", "files")


class Top:
    """The `size` items with the largest keys seen, in a min-heap whose root is the next to go."""

    def __init__(self, size: int, heap: list[tuple[Key, list[Any]]] | None = None) -> None:
        self.size = size
        self.heap = heap or []

    def admits(self, key: Key) -> bool:
        """Cheap test before building an item that would be dropped at once."""
        return len(self.heap) < self.size or key > self.heap[0][0]

    def push(self, key: Key, item: list[Any]) -> None:
        if len(self.heap) < self.size:
            heapq.heappush(self.heap, (key, item))
        else:
            heapq.heapreplace(self.heap, (key, item))

    def best(self) -> list[list[Any]]:
        """Items, largest key first."""
        return [item for _, item in sorted(self.heap, key=lambda entry: entry[0], reverse=True)]

    def to_json(self) -> list[list[Any]]:
        return [[list(key), list(item)] for key, item in self.heap]

    @classmethod
    def from_json(cls, size: int, data: list[list[Any]]) -> Top:
        # Heap order is kept as saved, so the resumed heap evolves exactly as the original.
        return cls(size, [(tuple(key), list(item)) for key, item in data])


class ChannelTally:
    """One channel's running summary over a window; `add` each message once, in any order."""

    def __init__(self, channel: str, name: str, top: int = 5) -> None:
        if top < 1:
            raise ValueError(f"a tally keeps at least 1 item of each list, not {top}")
        self.channel = channel
        self.name = name
        self.top = top
        self.shared = 2 * top  # links and files are one short line each: show twice as many
        self.messages = 0
        self.bot_messages = 0
        self.threads = 0
        self.reactions = 0
        self.links = 0
        self.files = 0
        self.people: dict[str, int] = {}
        self.joined: dict[str, str] = {}  # user → first ts
        self.left: dict[str, str] = {}
        self.top_threads = Top(top)
        self.top_reacted = Top(top)
        self.top_questions = Top(top)
        self.top_files = Top(self.shared)
        self.top_links: dict[str, list[str]] = {}  # url → [latest ts, user], at most `shared`
        self._floor: tuple[str, str] | None = None  # the (ts, url) of the next link to go

    def add_page(self, messages: Iterable[Message]) -> None:
        """Count each message of a page once; cheap for the common plain message.

        The hot attributes are bound to locals and the counters written back once a page:
        this loop is most of what a digest costs beyond fetching the history.
        """
        people, threads, reacted_top = self.people, self.top_threads, self.top_reacted
        questions = self.top_questions
        count = bots = thread_count = reaction_count = 0
        for message in messages:
            subtype = message.get("subtype")
            if subtype is not None and subtype not in HUMAN:
                if subtype == "bot_message":
                    bots += 1
                else:
                    self._noise(subtype, message)
                continue
            if message.get("bot_id"):
                bots += 1
                continue
            ts: str = message["ts"]
            user: str = message.get("user") or ""
            text: str = message.get("text") or ""
            count += 1
            if user:
                people[user] = people.get(user, 0) + 1
            reacted = 0
            if "reactions" in message:
                for reaction in message["reactions"]:
                    reacted += reaction.get("count", 0)
            replies: int = message.get("reply_count") or 0
            key: Key
            if replies:
                thread_count += 1
                repliers: int = message.get("reply_users_count") or 0
                key = (repliers, replies, ts)
                if threads.admits(key):
                    threads.push(key, [ts, user, excerpt(text), replies, repliers, reacted])
            elif "?" in text and message.get("thread_ts", ts) == ts and asks(text):
                key = (-float(ts),)  # the oldest have waited longest
                if questions.admits(key):
                    questions.push(key, [ts, user, excerpt(text), 0, 0, reacted])
            if reacted:
                reaction_count += reacted
                key = (reacted, ts)
                if reacted_top.admits(key):
                    repliers = message.get("reply_users_count") or 0
                    reacted_top.push(key, [ts, user, excerpt(text), replies, repliers, reacted])
            if "<http" in text:
                for url in LINK.findall(text):
                    self._link(url.replace("&amp;", "&"), ts, user)
            files = message.get("files")
            if files:
                self._files(files, ts, user)
        self.messages += count
        self.bot_messages += bots
        self.threads += thread_count
        self.reactions += reaction_count

    def _noise(self, subtype: str, message: Message) -> None:
        if subtype == "channel_join":
            first(self.joined, message.get("user", ""), message["ts"])
        elif subtype == "channel_leave":
            first(self.left, message.get("user", ""), message["ts"])

    def _link(self, url: str, ts: str, user: str) -> None:
        """Keep the `shared` URLs shared most recently, each once with its latest share."""
        self.links += 1
        kept = self.top_links.get(url)
        if kept is not None:
            if ts > kept[0]:
                kept[0], kept[1] = ts, user
                self._floor = None
            return
        if len(self.top_links) >= self.shared:
            floor = self._floor or min(
                (share[0], kept_url) for kept_url, share in self.top_links.items()
            )
            if (ts, url) <= floor:
                self._floor = floor
                return
            del self.top_links[floor[1]]
            self._floor = None
        self.top_links[url] = [ts, user]

    def _files(self, files: list[dict[str, Any]], ts: str, user: str) -> None:
        self.files += len(files)
        for index, shared in enumerate(files):
            key = (ts, index)
            if self.top_files.admits(key):
                name = shared.get("name") or shared.get("title") or "file"
                link = shared.get("permalink") or ""
                self.top_files.push(
                    key, [name, ts, user, link if link.startswith("https://") else ""]
                )

    def to_json(self) -> dict[str, Any]:
        """The whole state as JSON data: `from_json` of it continues exactly where this stopped."""
        return {
            "channel": self.channel,
            "name": self.name,
            "top": self.top,
            "counts": {name: getattr(self, name) for name in COUNTS},
            "people": dict(self.people),
            "joined": dict(self.joined),
            "left": dict(self.left),
            "top_threads": self.top_threads.to_json(),
            "top_reacted": self.top_reacted.to_json(),
            "top_questions": self.top_questions.to_json(),
            "top_files": self.top_files.to_json(),
            "top_links": {url: list(share) for url, share in self.top_links.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ChannelTally:
        tally = cls(data["channel"], data["name"], data["top"])
        for name in COUNTS:
            setattr(tally, name, data["counts"][name])
        tally.people = dict(data["people"])
        tally.joined = dict(data["joined"])
        tally.left = dict(data["left"])
        tally.top_threads = Top.from_json(tally.top, data["top_threads"])
        tally.top_reacted = Top.from_json(tally.top, data["top_reacted"])
        tally.top_questions = Top.from_json(tally.top, data["top_questions"])
        tally.top_files = Top.from_json(tally.shared, data["top_files"])
        tally.top_links = {url: list(share) for url, share in data["top_links"].items()}
        return tally

    def result(self) -> ChannelDigest:
        return ChannelDigest(
            channel=self.channel,
            name=self.name,
            stats=Stats(
                messages=self.messages,
                threads=self.threads,
                people=len(self.people),
                reactions=self.reactions,
                files=self.files,
                links=self.links,
            ),
            threads=[self._post(item) for item in self.top_threads.best()],
            reacted=[self._post(item) for item in self.top_reacted.best()],
            people=heapq.nsmallest(self.top, self.people.items(), key=lambda p: (-p[1], p[0])),
            questions=[self._post(item) for item in self.top_questions.best()],
            links=[
                Link(url, self.channel, ts, user)
                for url, (ts, user) in sorted(self.top_links.items(), key=lambda u: (u[1][0], u[0]))
            ],
            files=[
                SharedFile(name, self.channel, ts, user, link or None)
                for name, ts, user, link in reversed(self.top_files.best())
            ],
            joined=sorted(self.joined, key=lambda user: (self.joined[user], user)),
            left=sorted(self.left, key=lambda user: (self.left[user], user)),
            bot_messages=self.bot_messages,
        )

    def _post(self, item: list[Any]) -> Post:
        ts, user, text, replies, repliers, reactions = item
        return Post(self.channel, ts, user, text, replies, repliers, reactions)


def first(seen: dict[str, str], user: str, ts: str) -> None:
    """Remember the earliest `ts` of `user`, whatever order the messages come in."""
    if user and (user not in seen or ts < seen[user]):
        seen[user] = ts


def asks(text: str) -> bool:
    """Whether the text asks something outside code: a "?" that ends a sentence."""
    if "`" in text:
        text = CODE.sub(" ", text)
    return QUESTION.search(text) is not None


def excerpt(text: str, limit: int = EXCERPT) -> str:
    """The start of `text`, cut at a word and never inside Slack markup (`<…>`)."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    if cut.rfind("<") > cut.rfind(">"):
        cut = cut[: cut.rfind("<")]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"


def summarize(
    title: str,
    window: Window,
    tallies: Sequence[ChannelTally],
    *,
    previous: Stats | None = None,
    sections: Sequence[str] = SECTIONS,
) -> Digest:
    """The digest of the channels' tallies; `people` counts each person once across channels."""
    unknown = [name for name in sections if name not in SECTIONS]
    if unknown:
        raise ValueError(
            f"unknown digest section {unknown[0]!r}: use some of {', '.join(SECTIONS)}"
        )
    channels = [tally.result() for tally in tallies]
    people = set[str]().union(*(tally.people for tally in tallies))
    totals = Stats(
        messages=sum(c.stats.messages for c in channels),
        threads=sum(c.stats.threads for c in channels),
        people=len(people),
        reactions=sum(c.stats.reactions for c in channels),
        files=sum(c.stats.files for c in channels),
        links=sum(c.stats.links for c in channels),
    )
    return Digest(title, window, channels, totals, previous, tuple(sections))


Linkable = TypeVar("Linkable", Post, SharedFile)


def with_permalinks(digest: Digest, permalinks: Mapping[tuple[str, str], str]) -> Digest:
    """The digest with each post's and file's permalink filled from `(channel, ts) → url`."""

    def linked(items: list[Linkable]) -> list[Linkable]:
        return [
            replace(item, permalink=item.permalink or permalinks.get((item.channel, item.ts)))
            for item in items
        ]

    channels = [
        replace(
            channel,
            threads=linked(channel.threads),
            reacted=linked(channel.reacted),
            questions=linked(channel.questions),
            files=linked(channel.files),
        )
        for channel in digest.channels
    ]
    return replace(digest, channels=channels)
