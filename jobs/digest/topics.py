"""Rising topics: the terms of a channel's conversation that are new or growing since the last run.

Keywords come from YAKE (unsupervised, one document, no model or corpus to download) over a
bounded sample of the window's messages; YAKE is imported only when a digest asks for topics.
Importing it (numpy and networkx with it) takes a third of a second: a worker does it once,
in the background of its first digest; a command that builds one digest and exits has it done
by `jobs.digest.helper` on another core.
"""

from __future__ import annotations

import heapq
import importlib
import re
import sys
import threading
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from jobs.digest import helper
from jobs.digest.model import Topic

SAMPLE_CHARS = 20_000
MESSAGE_CHARS = 500
KEYWORDS = 20
# A term is rising when it grew by half and by at least this many messages.
RISE = 1.5
MIN_GROWTH = 2
MARKUP = re.compile(
    r"```.*?```|`[^`\n]*`|<[^>]*>|:[a-z0-9_+'-]+:|^(?:&gt;|>).*$|&\w+;",
    re.DOTALL | re.MULTILINE,
)


class Sample:
    """A bounded sample of a channel's messages, the same whatever order they arrive in: the
    messages whose `ts` hashes lowest, until their text reaches `chars`."""

    def __init__(self, chars: int = SAMPLE_CHARS) -> None:
        self.chars = chars
        self.kept: dict[str, tuple[int, str]] = {}  # ts → (hash, text)
        self.highest: list[tuple[int, str]] = []  # (-hash, ts) of what is kept: a max-heap
        self.size = 0
        self.ceiling: int | None = None  # the hash that next leaves, once full
        self.seen = 0

    def add(self, ts: str, text: str) -> None:
        self.seen += 1
        rank = zlib.crc32(ts.encode())
        if self.ceiling is not None and rank >= self.ceiling:
            return
        if ts in self.kept:
            return
        text = text[:MESSAGE_CHARS]
        self.kept[ts] = (rank, text)
        heapq.heappush(self.highest, (-rank, ts))
        self.size += len(text)
        while self.size > self.chars:
            # What hashes highest leaves, and nothing hashing as high can come back: the sample
            # is the longest run of lowest hashes that fits, whatever the order.
            _, highest = heapq.heappop(self.highest)
            dropped, text = self.kept.pop(highest)
            self.size -= len(text)
            self.ceiling = dropped if self.ceiling is None else min(self.ceiling, dropped)

    def texts(self) -> list[str]:
        return [text for _, (_, text) in sorted(self.kept.items())]

    def to_json(self) -> dict[str, Any]:
        return {
            "chars": self.chars,
            "kept": {ts: text for ts, (_, text) in self.kept.items()},
            "ceiling": self.ceiling,
            "seen": self.seen,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Sample:
        sample = cls(data["chars"])
        sample.kept = {ts: (zlib.crc32(ts.encode()), text) for ts, text in data["kept"].items()}
        sample.highest = [(-rank, ts) for ts, (rank, _) in sample.kept.items()]
        heapq.heapify(sample.highest)
        sample.size = sum(len(text) for _, text in sample.kept.values())
        sample.ceiling = data["ceiling"]
        sample.seen = data["seen"]
        return sample


def preload() -> None:
    """Start importing YAKE in the background, where it overlaps the waits on Slack while the
    history is fetched (nothing to do once imported, or when the helper process does it)."""
    if "yake" not in sys.modules and helper.current is None:
        thread = threading.Thread(target=importlib.import_module, args=("yake",), daemon=True)
        thread.start()


def clean(text: str) -> str:
    """A message as words: no markup, links, emoji codes, code or quotes."""
    return " ".join(MARKUP.sub(" ", text).split())


def counts(texts: Sequence[str]) -> dict[str, int]:
    """The sample's keywords, each with how many messages hold it (at least two); found by the
    helper process when there is one."""
    found = None if helper.current is None else helper.current.keywords(texts)
    return extract(texts) if found is None else found


def extract(texts: Sequence[str], top: int = KEYWORDS) -> dict[str, int]:
    """`counts`, found in this process."""
    cleaned = [clean(text).casefold() for text in texts]
    document = "\n".join(text for text in cleaned if text)
    if len(document) < 20:
        return {}
    import yake  # only for topics: `preload` or the helper began it

    extractor = yake.KeywordExtractor(lan="en", n=2, top=top)
    found: dict[str, int] = {}
    for term, _ in extractor.extract_keywords(document):
        word = re.compile(rf"(?<!\w){re.escape(term.casefold())}(?!\w)")
        holding = sum(1 for text in cleaned if word.search(text))
        if holding >= 2:
            found[term.casefold()] = holding
    return dict(sorted(found.items()))


def rising(now: Mapping[str, int], before: Mapping[str, int] | None, limit: int = 5) -> list[Topic]:
    """The terms new since the last run (`previous` 0) or grown by half, fastest first; without
    a last run, the most frequent terms (`previous` None). A term inside one already shown (or
    holding it) is not shown again."""
    found: list[tuple[float, int, str, int | None]] = []
    for term, count in now.items():
        if before is None:
            found.append((0.0, count, term, None))
            continue
        last = before.get(term, 0)
        if count >= last * RISE and count - last >= MIN_GROWTH:
            found.append((count / last if last else float("inf"), count, term, last))
    found.sort(key=lambda item: (-item[0], -item[1], -item[2].count(" "), item[2]))
    shown: list[Topic] = []
    for _, count, term, previous in found:
        if len(shown) == limit:
            break
        if not any(overlaps(term, topic.term) for topic in shown):
            shown.append(Topic(term, count, previous))
    return shown


def overlaps(one: str, other: str) -> bool:
    """Whether one term's words run inside the other's ("item" in "check item")."""
    a, b = f" {one} ", f" {other} "
    return a in b or b in a
