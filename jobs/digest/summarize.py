"""Summarize: fold a channel's messages, one at a time, into the figures and top lists of a digest.

A tally keeps counters and bounded top-k structures only, so its memory does not grow with the
channel's traffic, and it round-trips through JSON, so a run stopped by a rate limit can resume.
Every top list is keyed by values plus the message's `ts`, so the result does not depend on the
order messages arrive in.
"""

from __future__ import annotations

import heapq
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from jobs.digest import topics
from jobs.digest.extract import action, decides, done, excerpt, may_say, resolves
from jobs.digest.model import (
    SECTIONS,
    ActionItem,
    ChannelDigest,
    Digest,
    Highlight,
    Link,
    Message,
    Post,
    SharedFile,
    Stats,
    Window,
)

# Subtypes written by people; every other subtype is Slack's own noise (topic, rename, …).
HUMAN = frozenset({"thread_broadcast", "file_share", "me_message"})
HIGHLIGHTS = 3
# Threads whose replies are fetched, per channel: the highlights' and a few more for the
# outcome of decisions and action items. Bounded, so a busy channel costs a few calls more.
MAX_THREADS = 5
# Distinct URLs (or files) counted per channel; past it the least shared is forgotten.
MAX_SHARED = 200
# How much of the message a link or file came with is kept: what its excerpt reads, and more.
SOURCE = 1000
# What the LLM summary may read: the latest human messages, each cut to this.
TRANSCRIPT = 200
TRANSCRIPT_TEXT = 300
LINK = re.compile(r"<(https?://[^|>\s]+)(?:\|[^>]*)?>")
# A "?" that ends a sentence, not one inside a URL's query string.
QUESTION = re.compile(r"\?(?:[\s)\]\"'”*_~!]|$)")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)

Key = tuple[Any, ...]
COUNTS = ("messages", "bot_messages", "threads", "reactions", "links", "files")
Day = tuple[str, float]  # an ISO date and when it starts in the window, epoch seconds


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
    """One channel's running summary over a window; `add` each message once, in any order.

    `days` are the window's local days (`activity.days`); `transcript` keeps the latest
    messages' text for an LLM summary, which only `summarizer: llm` needs.
    """

    def __init__(
        self,
        channel: str,
        name: str,
        top: int = 5,
        *,
        days: Sequence[Day] = (),
        transcript: bool = False,
    ) -> None:
        if top < 1:
            raise ValueError(f"a tally keeps at least 1 item of each list, not {top}")
        self.channel = channel
        self.name = name
        self.top = top
        self.shared = top  # links and files shown, with "+N more"
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
        self.top_decisions = Top(2 * top)
        self.top_actions = Top(2 * top)
        self.transcript = Top(TRANSCRIPT) if transcript else None
        # url (or file) → [shares, reactions, latest ts, user, text(, name, permalink)]; the
        # text is excerpted only for what is shown
        self.top_links: dict[str, list[Any]] = {}
        self.top_files: dict[str, list[Any]] = {}
        self.day_names = [day for day, _ in days]
        self.day_starts = [start for _, start in days]
        self.day_counts = [0] * len(days)
        self.sample = topics.Sample()
        # thread ts → what its replies showed: {"outcome", "people", "done"}
        self.fetched: dict[str, dict[str, Any]] = {}

    def add_page(self, messages: Iterable[Message]) -> None:
        """Count each message of a page once; cheap for the common plain message.

        The hot attributes are bound to locals and the counters written back once a page:
        this loop is most of what a digest costs beyond fetching the history.
        """
        people, threads, reacted_top = self.people, self.top_threads, self.top_reacted
        questions, starts, day_counts = self.top_questions, self.day_starts, self.day_counts
        sample, transcript = self.sample, self.transcript
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
            if starts:
                day = bisect_right(starts, float(ts)) - 1
                if day >= 0:
                    day_counts[day] += 1
            if text:
                sample.add(ts, text)
            reacted = 0
            marks = message.get("reactions")
            if marks:
                for reaction in marks:
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
            if marks or transcript is not None or may_say(text):
                thread = message.get("thread_ts")  # a reply also sent to the channel
                thread = thread if thread != ts else None
                self._said(ts, user, text, marks, reacted, replies, thread)
            if "<http" in text:
                for url in LINK.findall(text):
                    self._link(url.replace("&amp;", "&"), ts, user, text, reacted)
            files = message.get("files")
            if files:
                self._files(files, ts, user, text, reacted)
        self.messages += count
        self.bot_messages += bots
        self.threads += thread_count
        self.reactions += reaction_count

    def _said(
        self,
        ts: str,
        user: str,
        text: str,
        marks: list[dict[str, Any]] | None,
        reacted: int,
        replies: int,
        thread: str | None,
    ) -> None:
        """What a message says beyond the counts: a decision, an action item, a transcript line."""
        if self.transcript is not None and text and self.transcript.admits((ts,)):
            self.transcript.push((ts,), [user, text[:TRANSCRIPT_TEXT]])
        if decides(text, marks):
            key = (reacted, ts)
            if self.top_decisions.admits(key):
                self.top_decisions.push(key, [ts, user, excerpt(text), replies, 0, reacted, thread])
        item = action(text, user) if user else None
        if item is not None:
            key = (reacted, ts)
            if self.top_actions.admits(key):
                settled = done("", marks)  # a check mark on the request itself
                self.top_actions.push(
                    key, [ts, user, excerpt(text), replies, item.owner, settled, thread]
                )

    def _noise(self, subtype: str, message: Message) -> None:
        if subtype == "channel_join":
            first(self.joined, message.get("user", ""), message["ts"])
        elif subtype == "channel_leave":
            first(self.left, message.get("user", ""), message["ts"])

    def _link(self, url: str, ts: str, user: str, text: str, reacted: int) -> None:
        self.links += 1
        share(self.top_links, url, [1, reacted, ts, user, text[:SOURCE]])

    def _files(
        self, files: list[dict[str, Any]], ts: str, user: str, text: str, reacted: int
    ) -> None:
        self.files += len(files)
        for shared in files:
            name = shared.get("name") or shared.get("title") or "file"
            link = shared.get("permalink") or ""
            link = link if link.startswith("https://") else ""
            identity = shared.get("id") or link or name
            share(self.top_files, identity, [1, reacted, ts, user, text[:SOURCE], name, link])

    def wanted_threads(self) -> list[str]:
        """The threads whose replies the digest shows: the highlights', then those of decisions
        and open action items that have replies; at most `MAX_THREADS`."""
        wanted = [item[0] for item in self.highlight_items()]
        for top in (self.top_actions, self.top_decisions):
            for item in top.best():
                if item[3] and item[6] is None and item[0] not in wanted:
                    wanted.append(item[0])
        return wanted[:MAX_THREADS]

    def add_thread(self, parent: str, replies: Iterable[Message]) -> None:
        """Fold a fetched thread: its outcome, who took part, and the decisions, action items
        and completions its replies hold. Each thread is folded once."""
        if parent in self.fetched:
            return
        opener = ""
        people: list[str] = []
        said: list[tuple[str, str, str, int]] = []  # (ts, user, text, reactions) of replies
        settled: list[str] = []  # ts of replies that say something was done
        outcome: list[Any] | None = None
        for message in replies:
            if message.get("subtype") not in (None, *HUMAN) or message.get("bot_id"):
                continue
            ts, user = message["ts"], message.get("user") or ""
            text = message.get("text") or ""
            if user and user not in people:
                people.append(user)
            if ts == parent:
                opener = user
                continue
            marks = message.get("reactions")
            reacted = sum(r.get("count", 0) for r in marks or ())
            said.append((ts, user, text, reacted))
            if outcome is None and resolves(text, marks):
                outcome = [ts, user, excerpt(text), reacted]
            if done(text, marks):
                settled.append(ts)
            if message.get("subtype") != "thread_broadcast":  # the history had it already
                self._said(ts, user, text, marks, reacted, 0, parent)
        if outcome is None and said:
            ts, user, text, reacted = max(said, key=lambda r: (r[3], r[0]))
            if not reacted:
                ts, user, text, reacted = max(said)  # the latest
            outcome = [ts, user, excerpt(text), reacted]
        if opener in people:
            people.remove(opener)
            people.insert(0, opener)
        self.fetched[parent] = {"outcome": outcome, "people": people, "settled": settled}

    def highlight_items(self) -> list[list[Any]]:
        """The top threads by distinct repliers, reactions and replies."""
        ranked = sorted(
            self.top_threads.best(), key=lambda item: (item[4], item[5], item[3], item[0])
        )
        return ranked[::-1][:HIGHLIGHTS]

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
            "top_decisions": self.top_decisions.to_json(),
            "top_actions": self.top_actions.to_json(),
            "transcript": None if self.transcript is None else self.transcript.to_json(),
            "top_links": {url: list(share) for url, share in self.top_links.items()},
            "top_files": {key: list(share) for key, share in self.top_files.items()},
            "days": [self.day_names, self.day_starts, self.day_counts],
            "sample": self.sample.to_json(),
            "fetched": self.fetched,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ChannelTally:
        names, starts, day_counts = data["days"]
        tally = cls(
            data["channel"],
            data["name"],
            data["top"],
            days=list(zip(names, starts, strict=True)),
            transcript=data["transcript"] is not None,
        )
        for name in COUNTS:
            setattr(tally, name, data["counts"][name])
        tally.people = dict(data["people"])
        tally.joined = dict(data["joined"])
        tally.left = dict(data["left"])
        tally.top_threads = Top.from_json(tally.top, data["top_threads"])
        tally.top_reacted = Top.from_json(tally.top, data["top_reacted"])
        tally.top_questions = Top.from_json(tally.top, data["top_questions"])
        tally.top_decisions = Top.from_json(2 * tally.top, data["top_decisions"])
        tally.top_actions = Top.from_json(2 * tally.top, data["top_actions"])
        if data["transcript"] is not None:
            tally.transcript = Top.from_json(TRANSCRIPT, data["transcript"])
        tally.top_links = {url: list(share) for url, share in data["top_links"].items()}
        tally.top_files = {key: list(share) for key, share in data["top_files"].items()}
        tally.day_counts = list(day_counts)
        tally.sample = topics.Sample.from_json(data["sample"])
        tally.fetched = dict(data["fetched"])
        return tally

    def lines(self) -> list[tuple[str, str, str]]:
        """The transcript's (ts, user, text), oldest first; empty unless kept."""
        if self.transcript is None:
            return []
        return sorted((key[0], user, text) for key, (user, text) in self.transcript.heap)

    def result(
        self, before: Mapping[str, int] | None = None, *, with_topics: bool = True
    ) -> ChannelDigest:
        """The channel's digest; `before` is the previous run's term counts, for the topics
        (found only `with_topics`: they cost a keyword extraction)."""
        terms = topics.counts(self.sample.texts()) if with_topics else None
        links = ranked(most_shared(self.top_links))
        files = ranked(most_shared(self.top_files))
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
                Link(url, Post(self.channel, ts, user, excerpt(said), reactions=reacted), shares)
                for url, (shares, reacted, ts, user, said) in links[: self.shared]
            ],
            files=[
                SharedFile(
                    name,
                    Post(self.channel, ts, user, excerpt(said), reactions=reacted),
                    shares,
                    link or None,
                )
                for _, (shares, reacted, ts, user, said, name, link) in files[: self.shared]
            ],
            more_links=max(0, len(links) - self.shared),
            more_files=max(0, len(files) - self.shared),
            joined=sorted(self.joined, key=lambda user: (self.joined[user], user)),
            left=sorted(self.left, key=lambda user: (self.left[user], user)),
            bot_messages=self.bot_messages,
            highlights=[self._highlight(item) for item in self.highlight_items()],
            decisions=self._decisions(),
            actions=self._actions(),
            topics=[] if terms is None else topics.rising(terms, before),
            terms=terms,
            days=list(zip(self.day_names, self.day_counts, strict=True)),
        )

    def _post(self, item: list[Any]) -> Post:
        ts, user, text, replies, repliers, reactions = item[:6]
        thread = item[6] if len(item) > 6 else None
        return Post(self.channel, ts, user, text, replies, repliers, reactions, thread=thread)

    def _highlight(self, item: list[Any]) -> Highlight:
        post = self._post(item)
        fetched = self.fetched.get(post.ts)
        if fetched is None:
            return Highlight(post, people=(post.user,) if post.user else ())
        found = fetched["outcome"]
        outcome = None
        if found is not None:
            ts, user, text, reacted = found
            outcome = Post(self.channel, ts, user, text, reactions=reacted, thread=post.ts)
        return Highlight(post, outcome, tuple(fetched["people"]))

    def _decisions(self) -> list[Post]:
        """The decisions, each once (the same words twice are one decision), newest first."""
        seen: set[str] = set()
        found = []
        for item in sorted(self.top_decisions.best(), key=lambda item: item[0], reverse=True):
            words = " ".join(str(item[2]).casefold().split())
            if words not in seen:
                seen.add(words)
                found.append(self._post(item))
        return found[: self.top]

    def _actions(self) -> list[ActionItem]:
        """The action items, open ones first, then by time; done when checked or a later reply
        in its thread says so."""
        items = []
        for item in self.top_actions.best():
            ts, _, _, _, owner, checked, thread = item
            settled = self.fetched.get(thread or ts, {}).get("settled", ())
            finished = checked or any(later > ts for later in settled)
            items.append(ActionItem(self._post([*item[:4], 0, 0, thread]), owner, finished))
        items.sort(key=lambda a: (a.done, a.post.ts))
        return items[: self.top]


def first(seen: dict[str, str], user: str, ts: str) -> None:
    """Remember the earliest `ts` of `user`, whatever order the messages come in."""
    if user and (user not in seen or ts < seen[user]):
        seen[user] = ts


def asks(text: str) -> bool:
    """Whether the text asks something outside code: a "?" that ends a sentence."""
    if "`" in text:
        text = CODE.sub(" ", text)
    return QUESTION.search(text) is not None


def share(kept: dict[str, list[Any]], key: str, new: list[Any]) -> None:
    """Count one more share of `key` (`new` is [1, reactions, ts, user, …]), keeping the latest
    message it came with. At twice `MAX_SHARED` keys, all but the `MAX_SHARED` most shared are
    forgotten at once: a cost per new key that does not grow with how many are kept."""
    found = kept.get(key)
    if found is not None:
        found[0] += 1
        found[1] += new[1]
        if new[2] > found[2]:
            found[2:] = new[2:]
        return
    if len(kept) >= 2 * MAX_SHARED:
        most = most_shared(kept)
        kept.clear()
        kept.update(most)
    kept[key] = new


def most_shared(kept: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
    """The `MAX_SHARED` most shared, then most reacted, then latest shared."""
    return dict(
        heapq.nlargest(
            MAX_SHARED, kept.items(), key=lambda kv: (kv[1][0], kv[1][1], kv[1][2], kv[0])
        )
    )


def ranked(kept: Mapping[str, list[Any]]) -> list[tuple[str, list[Any]]]:
    """Shared things by how often shared, then reactions, then the latest share."""
    return sorted(kept.items(), key=lambda item: (-item[1][0], -item[1][1], item[1][2], item[0]))


def summarize(
    title: str,
    window: Window,
    tallies: Sequence[ChannelTally],
    *,
    previous: Stats | None = None,
    terms: Mapping[str, Mapping[str, int]] | None = None,
    sections: Sequence[str] = SECTIONS,
) -> Digest:
    """The digest of the channels' tallies; `people` counts each person once across channels.
    `terms` are the previous run's term counts by channel ID, for the rising topics."""
    unknown = [name for name in sections if name not in SECTIONS]
    if unknown:
        raise ValueError(
            f"unknown digest section {unknown[0]!r}: use some of {', '.join(SECTIONS)}"
        )
    before = terms or {}
    wanted = "topics" in sections
    channels = [tally.result(before.get(tally.channel), with_topics=wanted) for tally in tallies]
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


def with_permalinks(digest: Digest, link: Callable[[Post], str]) -> Digest:
    """The digest with every post's permalink made by `link` (where it has none yet)."""

    def linked(post: Post) -> Post:
        return post if post.permalink else replace(post, permalink=link(post))

    def outcome(post: Post | None) -> Post | None:
        return None if post is None else linked(post)

    channels = [
        replace(
            c,
            threads=[linked(p) for p in c.threads],
            reacted=[linked(p) for p in c.reacted],
            questions=[linked(p) for p in c.questions],
            decisions=[linked(p) for p in c.decisions],
            actions=[replace(a, post=linked(a.post)) for a in c.actions],
            highlights=[
                replace(h, post=linked(h.post), outcome=outcome(h.outcome)) for h in c.highlights
            ],
            links=[replace(x, post=linked(x.post)) for x in c.links],
            files=[replace(f, post=linked(f.post)) for f in c.files],
        )
        for c in digest.channels
    ]
    return replace(digest, channels=channels)
