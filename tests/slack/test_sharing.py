"""Runs reading the same pages share them through Redis: Slack is asked for each page once.

Each reader is a thread with its own Slack client and Redis connection, as a worker process
would have.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import redis

from jobs import keys
from jobs.errors import PermanentError
from jobs.slack.api import Client, pages
from jobs.slack.revocation import fingerprint
from jobs.slack.sharing import KEPT, SharedPages, identity, trimmed
from sandbox.slack import SlackSimulator
from sandbox.workspace import generate

# A database of its own: every key in it is this module's.
DB = 13
LATEST = "9999999999.000000"


@pytest.fixture
def cache(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + f"/{DB}")
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def sim() -> Iterator[SlackSimulator]:
    with SlackSimulator(generate(seed=9, channels=2, messages=450)) as simulator:
        yield simulator


def shared(
    sim: SlackSimulator, cache: redis.Redis, owner: str, channel: str = "eng"
) -> SharedPages:
    """A run's view of the pages, sharing those of `channel` (other runs read it too)."""
    own = redis.Redis(
        connection_pool=redis.ConnectionPool(**cache.connection_pool.connection_kwargs)
    )
    client = Client(None, token=sim.token, base_url=sim.url, retry_handlers=[])
    return SharedPages(client, own, owner, {sim.channel_id(channel)})


def history(reader: SharedPages, channel: str) -> list[dict[str, Any]]:
    found = reader.pages("conversations.history", channel=channel, latest=LATEST, limit=100)
    return [message for page in found for message in page["messages"]]


def read_together(sim: SlackSimulator, cache: redis.Redis, n: int) -> list[Any]:
    """What `n` concurrent readers of #eng's history each read (or the error each raised)."""
    channel = sim.channel_id("eng")
    read: list[Any] = [None] * n

    def work(i: int) -> None:
        try:
            read[i] = history(shared(sim, cache, f"run-{i}"), channel)
        except Exception as error:  # the test looks at it
            read[i] = error

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return read


def test_a_page_is_fetched_once_for_many_readers(sim: SlackSimulator, cache: redis.Redis) -> None:
    channel = sim.channel_id("eng")
    plain = Client(None, token=sim.token, base_url=sim.url, retry_handlers=[])
    expected = [
        message
        for page in pages(plain, "conversations.history", channel=channel, latest=LATEST, limit=100)
        for message in trimmed(page.data)["messages"]
    ]
    assert len(expected) > 400
    sim.traffic.clear()
    sim.limit(minute=1.0)  # Slack's tiers, over a one-second minute
    sim.slow("conversations.history", 0.05)  # the readers overlap
    read = read_together(sim, cache, 6)
    assert read == [expected] * 6
    summary = sim.summary()["conversations.history"]
    assert summary["calls"] == summary["distinct pages"] == -(-len(expected) // 100)
    assert summary["429"] == 0


def test_a_reader_takes_over_a_lease_its_holder_left(
    sim: SlackSimulator, cache: redis.Redis
) -> None:
    channel = sim.channel_id("eng")
    params = {"channel": channel, "latest": LATEST, "limit": 100}
    lease = keys.page_lease(fingerprint(sim.token), identity("conversations.history", params))
    cache.set(lease, "a-run-whose-worker-died", px=400)  # its fetch never finished
    sim.traffic.clear()
    started = time.monotonic()
    page = shared(sim, cache, "run-2").page("conversations.history", **params)
    assert time.monotonic() - started >= 0.35
    assert page["messages"]
    assert sim.summary()["conversations.history"]["calls"] == 1
    assert cache.get(lease) is None


def test_a_kept_page_holds_only_what_a_digest_reads(
    sim: SlackSimulator, cache: redis.Redis
) -> None:
    history(shared(sim, cache, "run-1"), sim.channel_id("eng"))
    kept = list(cache.scan_iter(keys.page("*", "*")))
    assert kept
    for key in kept:
        assert sim.token.encode() not in key
        assert 0 < cache.ttl(key) <= keys.PAGE_TTL
        page = orjson.loads(cache.get(key) or b"{}")
        assert set(page) == {"messages", "response_metadata"}
        for message in page["messages"]:
            assert set(message) <= set(KEPT)


def test_an_app_removed_from_the_channel_mid_burst_fails_every_reader_clearly(
    sim: SlackSimulator, cache: redis.Redis
) -> None:
    channel = sim.channel_id("eng")
    first = shared(sim, cache, "run-0")
    first.page("conversations.history", channel=channel, latest=LATEST, limit=100)
    sim.slack.channels[channel]["is_member"] = False
    read = read_together(sim, cache, 3)
    for error in read:
        assert isinstance(error, PermanentError)
        assert "the app is not in" in str(error)
    assert not list(cache.scan_iter(keys.page_lease("*", "*")))  # nobody waits on a lease


def test_a_channel_no_other_run_reads_is_fetched_and_not_kept(
    sim: SlackSimulator, cache: redis.Redis
) -> None:
    sim.traffic.clear()
    first = history(shared(sim, cache, "run-1", channel="general"), sim.channel_id("eng"))
    second = history(shared(sim, cache, "run-2", channel="general"), sim.channel_id("eng"))
    assert first == second and len(first) > 400
    summary = sim.summary()["conversations.history"]
    assert summary["calls"] == 2 * summary["distinct pages"]
    assert not list(cache.scan_iter("digests:page*"))
