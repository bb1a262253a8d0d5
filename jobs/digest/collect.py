"""Collect: each channel's history over the window, streamed page by page into its tally, then
the replies of the few threads the digest shows.

Nothing but the tallies stays in memory. When Slack rate-limits us or fails, the cursor and
the tallies so far are saved, so the retried task resumes where this one stopped. Pages come
through `jobs.slack.sharing`, so runs over the same channel ask Slack once: history is read
back from the window's end without a lower bound, which makes a daily and a weekly digest
ending at one slot read the same pages (the weekly reads on).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

from jobs.digest import activity, helper
from jobs.digest.helper import HelperGone
from jobs.digest.model import Message, Window
from jobs.digest.summarize import ChannelTally
from jobs.errors import RetryableError
from jobs.garbage import collector_paused
from jobs.slack.api import next_cursor
from jobs.slack.sharing import SharedPages

# The most `conversations.history` returns in one page: fewer, larger pages are faster.
PAGE = 999
# A thread's replies are read this far (200 a page): enough to find how it ended.
REPLY_PAGES = 3

Checkpoint = dict[str, Any]


class Collector:
    def __init__(
        self,
        shared: SharedPages,
        window: Window,
        checkpoint: Checkpoint | None,
        save: Callable[[Checkpoint], None],
        progress: Callable[[int], None],
        *,
        transcript: bool = False,
    ) -> None:
        self.shared = shared
        self.window = window
        self.oldest = ts_key(window.oldest)
        self.days = activity.days(window)
        self.transcript = transcript
        self.state: Checkpoint = dict(checkpoint or {})
        self.save = save
        self.progress = progress
        self.messages = sum(entry.get("messages", 0) for entry in self.state.values())

    def channel(self, channel: str, name: str) -> ChannelTally:
        """The channel's tally over the window, resumed from the checkpoint when there is one."""
        entry = self.state.get(channel)
        if entry:
            tally = ChannelTally.from_json(entry["tally"])
        else:
            tally = ChannelTally(channel, name, days=self.days, transcript=self.transcript)
        if entry and entry["done"]:
            return self.threads(tally, name)
        cursor: str | None = entry["cursor"] if entry else None
        count: int = entry["messages"] if entry else 0
        began = cursor, count, self.messages
        folding = helper.current
        if folding is not None:
            folding.fold(tally.to_json())
        add_page = tally.add_page if folding is None else folding.add_page
        history = self.shared.pages(
            "conversations.history",
            cursor,
            channel=channel,
            label=f"#{name}",
            latest=self.window.latest,
            limit=PAGE,
        )
        try:
            with collector_paused():  # a page's thousands of dicts are in no cycle
                for page in history:
                    messages, last = self.in_window(page["messages"])
                    add_page(messages)
                    count += len(messages)
                    self.messages += len(messages)
                    self.progress(self.messages)
                    cursor = None if last else next_cursor(page)
                    if last:
                        break
            if folding is not None:
                tally = ChannelTally.from_json(folding.folded())
        except RetryableError:  # rate limits too: the retried task resumes at this page
            if folding is not None:
                try:
                    tally = ChannelTally.from_json(folding.folded())
                except HelperGone:  # what it folded is lost: resume from where this began
                    cursor, count, _ = began
            self.state[channel] = self.entry(tally, cursor, count, done=False)
            self.save(self.state)
            raise
        except HelperGone:  # fold it here, from where this began
            helper.stop()
            self.messages = began[2]
            return self.channel(channel, name)
        self.state[channel] = self.entry(tally, None, count, done=True)
        return self.threads(tally, name)

    def in_window(self, messages: list[Message]) -> tuple[list[Message], bool]:
        """The page's messages inside the window, and whether the window starts in it (the
        page is newest first)."""
        if not messages or ts_key(messages[-1]["ts"]) > self.oldest:
            return messages, False
        return [m for m in messages if ts_key(m["ts"]) > self.oldest], True

    def threads(self, tally: ChannelTally, name: str) -> ChannelTally:
        """Fold the replies of the threads the digest shows, each once; resumable by thread."""
        entry = self.state[tally.channel]
        wanted: list[str] = entry.setdefault("threads", tally.wanted_threads())
        for parent in wanted:
            if parent in tally.fetched:
                continue
            try:
                tally.add_thread(parent, self.replies(tally.channel, name, parent))
            except RetryableError:
                entry["tally"] = tally.to_json()
                self.save(self.state)
                raise
        entry["tally"] = tally.to_json()
        return tally

    def replies(self, channel: str, name: str, parent: str) -> Iterator[Message]:
        """The thread's messages in the window, its first `REPLY_PAGES` pages."""
        found = self.shared.pages(
            "conversations.replies",
            channel=channel,
            label=f"#{name}",
            ts=parent,
            oldest=self.window.oldest,
            latest=self.window.latest,
            limit=200,
        )
        messages = [m for page in islice(found, REPLY_PAGES) for m in page["messages"]]
        return iter(messages)

    @staticmethod
    def entry(tally: ChannelTally, cursor: str | None, count: int, done: bool) -> dict[str, Any]:
        return {"cursor": cursor, "done": done, "messages": count, "tally": tally.to_json()}


def ts_key(ts: str) -> tuple[int, str]:
    """A Slack `ts` in an order that holds whatever its number of digits."""
    seconds, _, fraction = ts.partition(".")
    return int(seconds), fraction.ljust(6, "0")
