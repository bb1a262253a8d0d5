"""The journal of queued work: what nobody holds is queued again, once; what is held, waiting
or done is left alone."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery

from jobs import inflight, keys
from jobs.queue import EVENT_TASK, Job, enqueue
from sandbox.redis_server import RedisServer
from tests.conftest import Child, Worker, environment, wait_until

QUEUE = "inflight-check"  # no worker consumes it


def queued(redis_client: redis.Redis, event_id: str) -> str:
    job = Job(EVENT_TASK, [{"event_id": event_id}], f"({event_id})")
    return enqueue(redis_client, job, QUEUE).task_id


def due_now(redis_client: redis.Redis, task_id: str) -> None:
    """As if the journal's check of `task_id` had come."""
    redis_client.zadd(keys.INFLIGHT, {task_id: 0})


def reconcile(redis_client: redis.Redis) -> list[str]:
    return inflight.reconcile(redis_client, QUEUE)


def test_a_queued_task_is_journaled_with_its_message(redis_client: redis.Redis) -> None:
    redis_client.delete(QUEUE)
    task_id = queued(redis_client, "EvJournal")
    assert redis_client.get(keys.task(task_id)) == redis_client.lindex(QUEUE, 0)
    score = redis_client.zscore(keys.INFLIGHT, task_id)
    assert score is not None and score > 0


def test_a_message_lost_after_its_fetch_is_queued_again_once(redis_client: redis.Redis) -> None:
    redis_client.delete(QUEUE)
    task_id = queued(redis_client, "EvLost")
    message = redis_client.rpop(QUEUE)  # fetched, then gone with the worker or with Redis
    assert reconcile(redis_client) == []  # not due yet
    due_now(redis_client, task_id)
    assert reconcile(redis_client) == [task_id]
    assert redis_client.lrange(QUEUE, 0, -1) == [message]
    due_now(redis_client, task_id)
    assert reconcile(redis_client) == []  # waiting in the queue again: not pushed twice
    assert redis_client.llen(QUEUE) == 1


def test_a_message_stranded_in_kombus_unacked_is_taken_back(redis_client: redis.Redis) -> None:
    redis_client.delete(QUEUE)
    task_id = queued(redis_client, "EvStranded")
    message = redis_client.rpop(QUEUE)
    redis_client.hset(inflight.UNACKED, task_id, b"[...]")
    redis_client.zadd(inflight.UNACKED_INDEX, {task_id: 1})
    due_now(redis_client, task_id)
    assert reconcile(redis_client) == [task_id]
    assert redis_client.lrange(QUEUE, 0, -1) == [message]
    # kombu would otherwise push it too, once its visibility timeout passed.
    assert not redis_client.hexists(inflight.UNACKED, task_id)
    assert redis_client.zscore(inflight.UNACKED_INDEX, task_id) is None


def test_held_and_done_work_is_left_alone(redis_client: redis.Redis) -> None:
    redis_client.delete(QUEUE)
    held, done = queued(redis_client, "EvHeld"), queued(redis_client, "EvDone")
    redis_client.delete(QUEUE)
    lease = inflight.Lease(redis_client, held)
    assert lease.acquire() is True
    assert inflight.Lease(redis_client, held).acquire() is False  # a second copy waits
    finished = inflight.Lease(redis_client, done)
    assert finished.acquire() is True
    finished.release(done=True)
    due_now(redis_client, held)
    assert reconcile(redis_client) == []
    assert redis_client.llen(QUEUE) == 0
    assert inflight.Lease(redis_client, done).acquire() is None  # a copy of it does nothing
    assert redis_client.zscore(keys.INFLIGHT, done) is None
    lease.release(done=False)  # a holder that stops without finishing: queued again
    due_now(redis_client, held)
    assert reconcile(redis_client) == [held]


def test_a_task_that_never_finishes_is_dropped_after_five_requeues(
    redis_client: redis.Redis,
) -> None:
    redis_client.delete(QUEUE)
    task_id = queued(redis_client, "EvPoison")
    for _ in range(inflight.MAX_REQUEUES):
        redis_client.rpop(QUEUE)  # its worker dies with it, every time
        due_now(redis_client, task_id)
        assert reconcile(redis_client) == [task_id]
    redis_client.rpop(QUEUE)
    due_now(redis_client, task_id)
    assert reconcile(redis_client) == []
    assert redis_client.llen(QUEUE) == 0
    assert redis_client.zscore(keys.INFLIGHT, task_id) is None
    assert redis_client.get(keys.task(task_id)) == "done"


def test_a_retry_is_checked_after_its_countdown(redis_client: redis.Redis) -> None:
    task_id = queued(redis_client, "EvRetry")
    lease = inflight.Lease(redis_client, task_id)
    assert lease.acquire()
    before = time.time()
    lease.release(done=False, retry_in=600)
    score = redis_client.zscore(keys.INFLIGHT, task_id)
    assert score is not None and score >= inflight.check_after(before + 600)


@pytest.fixture
def crashable(tmp_path: Path) -> Iterator[tuple[RedisServer, Worker, Child]]:
    """A Redis on AOF (`appendfsync always`) of this test's own, its worker and its beat."""
    server = RedisServer(appendfsync="always").start()
    schedules = tmp_path / "schedules.yaml"
    schedules.write_text("version: 1\nschedules: []\n")
    env = {**os.environ, **environment(server.url), "SCHEDULES_FILE": str(schedules)}
    worker = Worker(server.url, {"SCHEDULES_FILE": str(schedules)}).start()
    beat = Child("digests-beat-")
    beat.spawn([sys.executable, "-m", "celery", "-A", "jobs", "beat"], env)
    try:
        yield server, worker, beat
    finally:
        beat.stop()
        worker.stop()
        server.stop()


def produce(url: str, stop: threading.Event, accepted: list[str]) -> None:
    """Events as the webhook accepts them, about 500 a second, until `stop`; an event counts as
    accepted only once its enqueue returned (the webhook's 200)."""
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=0.5)
    n = 0
    while not stop.is_set():
        n += 1
        job = Job(EVENT_TASK, [{"event_id": f"EvCrash{n}", "event": {"type": "x"}}], "(crash)")
        try:
            accepted.append(enqueue(client, job).task_id)
        except (redis.RedisError, OSError):
            time.sleep(0.05)  # Slack would retry; this event was never acknowledged
        time.sleep(0.002)
    client.close()


@pytest.mark.timeout(300)  # its own wait for the backlog is 120 s, after producing
def test_a_redis_crash_loses_no_accepted_event_and_the_worker_keeps_running(
    crashable: tuple[RedisServer, Worker, Child],
) -> None:
    server, worker, beat = crashable
    accepted: list[str] = []
    stop = threading.Event()
    producer = threading.Thread(target=produce, args=(server.url, stop, accepted))
    producer.start()
    try:
        wait_until(lambda: len(accepted) > 1000)
        server.kill()
        time.sleep(1)
        server.start()
        restarted = time.monotonic()
        count = len(accepted)
        wait_until(lambda: len(accepted) > count + 500)
    finally:
        stop.set()
        producer.join()
    client = redis.Redis.from_url(server.url)

    def not_done() -> list[str]:
        states = client.mget([keys.task(task_id) for task_id in accepted])
        return [
            task_id for task_id, state in zip(accepted, states, strict=True) if state != b"done"
        ]

    wait_until(
        lambda: not not_done(),
        lambda: f"{beat.log()[-1000:]}\n{worker.log()[-1700:]}\nnot run: {not_done()[:5]}",
        120,
    )
    client.close()
    assert worker.process is not None and worker.process.poll() is None, worker.log()[-3000:]
    again = sum(line.count("queued again") for line in beat.log().splitlines())
    print(  # for bench/RESULTS.md
        f"{len(accepted)} events accepted, all run {time.monotonic() - restarted:.1f}s after "
        f"Redis restarted; {again} reconcile(s) queued work again"
    )


@pytest.mark.timeout(120)
def test_a_worker_holding_a_message_when_redis_dies_consumes_again_after(
    crashable: tuple[RedisServer, Worker, Child],
) -> None:
    """A retry waiting out its countdown is a message the worker holds unacknowledged; Redis
    dying then must not stop the worker (celery 5.7.0 died: "Unrecoverable error")."""
    server, worker, _ = crashable
    producer = Celery(broker=server.url)
    event = {"event_id": "EvLater", "event": {"type": "x"}}
    producer.send_task(EVENT_TASK, [event], countdown=600, ignore_result=True)
    producer.close()
    client = redis.Redis.from_url(server.url)
    wait_until(lambda: client.hlen(inflight.UNACKED), "the worker never held it")
    client.close()
    server.kill()
    time.sleep(1)
    server.start()
    client = redis.Redis.from_url(server.url)
    job = Job(EVENT_TASK, [{"event_id": "EvAfter", "event": {"type": "x"}}], "(after)")
    after = enqueue(client, job)
    done = keys.task(after.task_id)
    wait_until(lambda: client.get(done) == b"done", lambda: worker.log()[-3000:], 60)
    assert "Unrecoverable error" not in worker.log()
    client.close()
