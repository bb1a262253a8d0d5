"""Workers on one token pace together: a 429 backs that method off for all of them, in Redis.

Each "worker" here is a thread with its own Slack client and its own Redis connection: all they
share is what a worker process shares, the simulator and Redis.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from jobs.errors import RateLimited
from jobs.slack.api import Client, call
from jobs.slack.pacing import SLEEP_LIMIT, Pace
from sandbox.slack import SlackSimulator
from sandbox.slack.server import Call
from sandbox.workspace import generate

# A database of its own: every key in it is this module's.
DB = 12


@pytest.fixture
def cache(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + f"/{DB}")
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="module")
def sim() -> Iterator[SlackSimulator]:
    with SlackSimulator(generate(seed=5, channels=2, messages=50)) as simulator:
        yield simulator


def worker_client(sim: SlackSimulator, cache: redis.Redis, owner: str) -> Client:
    own = redis.Redis(
        connection_pool=redis.ConnectionPool(**cache.connection_pool.connection_kwargs)
    )
    return Client(Pace(own, sim.token, owner), token=sim.token, base_url=sim.url, retry_handlers=[])


def run_workers(sim: SlackSimulator, cache: redis.Redis, method: str, n: int, calls: int) -> None:
    """`n` workers each making `calls` calls of `method`; none may fail."""
    channel = sim.channel_id("eng")
    failed: list[BaseException] = []

    def work(owner: str) -> None:
        client = worker_client(sim, cache, owner)
        try:
            for _ in range(calls):
                call(client, method, channel=channel, limit=1)
        except BaseException as error:  # the test reports it
            failed.append(error)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failed


def keep_calling(
    sim: SlackSimulator, cache: redis.Redis, method: str, done: threading.Event
) -> None:
    client = worker_client(sim, cache, "other")
    while not done.wait(0.01):
        call(client, method, channel=sim.channel_id("eng"))


@pytest.fixture
def traffic(sim: SlackSimulator) -> Iterator[list[Call]]:
    sim.clear_faults()
    sim.traffic.clear()
    yield sim.traffic
    sim.clear_faults()


def test_no_worker_calls_inside_another_workers_retry_after(
    sim: SlackSimulator, cache: redis.Redis, traffic: list[Call]
) -> None:
    sim.rate_limit("conversations.history", every=20, times=1, retry_after=1)
    done = threading.Event()
    others = threading.Thread(target=keep_calling, args=(sim, cache, "conversations.info", done))
    others.start()
    run_workers(sim, cache, "conversations.history", 4, 100)
    done.set()
    others.join()
    history = [c for c in traffic if c.method == "conversations.history"]
    assert sum(c.status == 200 for c in history) == 400
    (refused,) = [c for c in history if c.status == 429]
    # A call already on its way when the 429 came back may still arrive; after that (allowing
    # 50 ms for the back-off to reach Redis) no worker calls until Retry-After has passed.
    inside = [c for c in history if refused.at + 0.05 < c.at < refused.at + 1]
    assert not inside
    assert [c for c in history if c.at > refused.at + 1]  # and then they went on
    # Another method of the same token kept going meanwhile.
    info = [c for c in traffic if c.method == "conversations.info"]
    assert [c for c in info if refused.at + 0.05 < c.at < refused.at + 1]


def test_workers_under_slacks_tiers_are_seldom_refused(
    sim: SlackSimulator, cache: redis.Redis, traffic: list[Call]
) -> None:
    sim.limit(minute=1.0)  # conversations.history: 50 calls a second
    run_workers(sim, cache, "conversations.history", 4, 40)
    history = [c for c in traffic if c.method == "conversations.history"]
    assert sum(c.status == 200 for c in history) == 160
    refused = [c for c in history if c.status == 429]
    assert refused  # the limit was reached
    # The first time, each worker had a call on its way; from then on they call one at a time,
    # so each minute refuses a call or two, not one per worker (a client sleeping on its own
    # 429s is refused about one call in nine here).
    first = [c for c in refused if c.at < refused[0].at + 0.05]
    later = refused[len(first) :]
    minutes = math.ceil(history[-1].at - history[0].at)
    assert len(first) <= 4
    assert len(later) <= 2 * minutes


def test_a_back_off_holds_one_method_of_one_token(cache: redis.Redis) -> None:
    pace = Pace(cache, "xoxb-one", "w1")
    pace.back_off("conversations.history", 30)
    with pytest.raises(RateLimited) as raised:
        Pace(cache, "xoxb-one", "w2").wait("conversations.history")
    assert 29 < raised.value.retry_after <= 30
    # Other methods and other tokens keep going.
    assert Pace(cache, "xoxb-one", "w2").wait("conversations.replies") is False
    assert Pace(cache, "xoxb-two", "w2").wait("conversations.history") is False
    # A shorter back-off does not shorten a longer one.
    pace.back_off("conversations.history", 1)
    with pytest.raises(RateLimited):
        pace.wait("conversations.history")
    assert not [key for key in cache.scan_iter("digests:pace*") if b"xoxb" in key]


def test_after_a_short_back_off_callers_go_one_at_a_time(cache: redis.Redis) -> None:
    first, second = Pace(cache, "xoxb-one", "w1"), Pace(cache, "xoxb-one", "w2")
    first.back_off("conversations.history", 0.2)
    order: list[str] = []

    def call_second() -> None:
        with second.turn("conversations.history"):
            order.append("second")

    started = time.monotonic()
    with first.turn("conversations.history"):
        assert 0.15 < time.monotonic() - started < SLEEP_LIMIT  # the back-off was waited out
        other = threading.Thread(target=call_second)
        other.start()
        time.sleep(0.3)
        order.append("first")  # the second caller is still waiting for this call
    other.join(5)
    assert order == ["first", "second"]
