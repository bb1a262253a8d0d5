"""Pages of history and replies shared by the runs of a burst: Slack is asked for each once.

Many schedules due at one slot read the same busy channels over windows that end at the same
instant. The first run to need a page takes its lease, fetches it and keeps it in Redis for a
few minutes; the others wait for it rather than ask Slack again. A run whose lease holder died
takes the page over once the lease lapses. A page keeps only the fields a digest reads, and
lives `keys.PAGE_TTL` seconds after it was last read.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Collection, Iterator
from typing import Any, cast

import orjson
import redis
from slack_sdk import WebClient

from jobs import keys
from jobs.slack.api import HistoryMessage, SharedFile, call, next_cursor
from jobs.slack.revocation import fingerprint

# How long others wait on a fetcher that may have died: a page and a short pace wait.
LEASE_MS = 15_000
POLL = 0.05
# What a digest reads of a message; everything else stays out of Redis.
KEPT = HistoryMessage.__optional_keys__ - {"metadata"}
FILE_KEPT = tuple(SharedFile.__optional_keys__)
# The kept page (its TTL renewed), else "" once the lease is ours (taken now, or already ours
# from an earlier try of the run), else nothing: another run is fetching it.
# KEYS: page, lease. ARGV: owner, page TTL (s), lease (ms).
GET_OR_LEASE = """
local kept = redis.call('GETEX', KEYS[1], 'EX', ARGV[2])
if kept then return kept end
local holder = redis.call('GET', KEYS[2])
if holder == ARGV[1] or not holder then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
  return ''
end
return false
"""
# Keep the page for the others and give the lease back if it is still ours.
# KEYS: page, lease. ARGV: owner, page TTL (s), the page.
KEEP = """
redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
"""
RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end"

Page = dict[str, Any]


class SharedPages:
    """The pages `client` would fetch, through Redis for the `channels` other runs read too;
    `owner` (a run) holds their leases, so a retry of the run takes up its own lease at once."""

    def __init__(
        self, client: WebClient, cache: redis.Redis, owner: str, channels: Collection[str]
    ) -> None:
        self.client = client
        self.cache = cache
        self.owner = owner
        self.channels = channels
        self.token = fingerprint(client.token or "")

    def pages(self, method: str, cursor: str | None = None, **params: Any) -> Iterator[Page]:
        """Every page of `method` from `cursor` on, as `jobs.slack.api.pages` reads them."""
        while True:
            page = self.page(method, cursor=cursor, **params)
            yield page
            cursor = next_cursor(page)
            if cursor is None:
                return

    def page(self, method: str, **params: Any) -> Page:
        """One page: kept by another run, or fetched under its lease and kept for the rest; a
        page nobody else reads is only fetched."""
        if params.get("channel") not in self.channels:
            return cast(Page, call(self.client, method, **params).data)
        request = identity(method, params)
        key = keys.page(self.token, request)
        lease = keys.page_lease(self.token, request)
        while True:
            kept = self.cache.eval(GET_OR_LEASE, 2, key, lease, self.owner, keys.PAGE_TTL, LEASE_MS)
            if kept:
                return dict(orjson.loads(kept))
            if kept is not None:
                break
            time.sleep(POLL)
        try:
            page = trimmed(call(self.client, method, **params).data)
        except BaseException:
            self.cache.eval(RELEASE, 1, lease, self.owner)
            raise
        self.cache.eval(KEEP, 2, key, lease, self.owner, keys.PAGE_TTL, orjson.dumps(page))
        return page


def identity(method: str, params: dict[str, Any]) -> str:
    """The same for two calls that ask Slack for the same page, however they name it."""
    named = {name: value for name, value in params.items() if name != "label"}
    asked = orjson.dumps([method, named], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(asked).hexdigest()[:32]


def trimmed(data: Any) -> Page:
    """The page as a digest reads it: its messages' kept fields and where the next page starts."""
    messages = []
    for message in data.get("messages") or ():
        kept = {name: value for name, value in message.items() if name in KEPT}
        files = kept.get("files")
        if files:
            kept["files"] = [{k: f[k] for k in FILE_KEPT if k in f} for f in files]
        reactions = kept.get("reactions")
        if reactions:
            kept["reactions"] = [
                {"name": r.get("name"), "count": r.get("count", 0)} for r in reactions
            ]
        messages.append(kept)
    cursor = (data.get("response_metadata") or {}).get("next_cursor") or ""
    return {"messages": messages, "response_metadata": {"next_cursor": cursor}}
