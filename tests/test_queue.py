"""The async producer writes what Celery writes, and a real worker runs it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence

import redis
import redis.asyncio
from celery import Celery

from jobs.queue import Job, Producer, task_message
from tests.conftest import Worker
from tests.messages import task_args


def shape(value: object) -> object:
    """The keys of nested dicts, the thing a consumer depends on."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    return type(value).__name__ if value is not None else None


def test_message_has_the_shape_celery_itself_writes(
    redis_url: str, redis_client: redis.Redis
) -> None:
    queue = "shape-check"
    celery = Celery(broker=redis_url, backend=redis_url)
    celery.conf.task_default_queue = queue
    celery.send_task("jobs.tasks.handle_event", args=[{"a": 1}])
    theirs = json.loads(str(redis_client.rpop(queue)))
    ours = json.loads(
        task_message(
            "jobs.tasks.handle_event",
            [{"a": 1}],
            task_id="00000000-0000-0000-0000-000000000000",
            queue=queue,
            argsrepr="[{'a': 1}]",
            reply_to="r",
        )
    )
    assert set(ours) == set(theirs)
    assert set(ours["headers"]) == set(theirs["headers"])
    assert set(ours["properties"]) == set(theirs["properties"])
    assert ours["properties"]["delivery_info"] == theirs["properties"]["delivery_info"]
    assert task_args(json.dumps(ours)) == task_args(json.dumps(theirs)) == [{"a": 1}]
    celery.close()


def test_time_limits_are_written_as_celery_writes_them(
    redis_url: str, redis_client: redis.Redis
) -> None:
    queue = "timelimit-check"
    celery = Celery(broker=redis_url, backend=redis_url)
    celery.conf.task_default_queue = queue
    celery.send_task("jobs.tasks.run_digest", args=["s", "t"], time_limit=930, soft_time_limit=900)
    theirs = json.loads(str(redis_client.rpop(queue)))
    celery.close()
    ours = json.loads(
        task_message(
            "jobs.tasks.run_digest",
            ["s", "t"],
            task_id="00000000-0000-0000-0000-000000000000",
            queue=queue,
            argsrepr="('s', 't')",
            reply_to="r",
            timelimit=(930, 900),
        )
    )
    assert ours["headers"]["timelimit"] == theirs["headers"]["timelimit"] == [930, 900]


def enqueue_many(
    redis_url: str, payloads: Sequence[Mapping[str, object]], dedupe: bool, queue: str = "celery"
) -> list[str]:
    async def run() -> list[str]:
        client = redis.asyncio.Redis.from_url(redis_url)
        producer = Producer(client, queue)
        done = await asyncio.gather(
            *(
                producer.enqueue(
                    Job(
                        "jobs.tasks.handle_event",
                        [payload],
                        "(test)",
                        dedupe_key=f"digests:test:{payload['event_id']}" if dedupe else "",
                    )
                )
                for payload in payloads
            )
        )
        await client.aclose()
        return [item.task_id for item in done]

    return asyncio.run(run())


def test_a_real_worker_runs_what_it_writes_with_the_right_arguments(
    redis_url: str, worker: Worker
) -> None:
    payloads = [
        {"event_id": f"EvBatch{n}", "event": {"type": f"kind_{n}"}, "type": "event_callback"}
        for n in range(40)
    ]
    task_ids = enqueue_many(redis_url, payloads, dedupe=False)
    celery = Celery(broker=redis_url, backend=redis_url)
    results = [celery.AsyncResult(task_id).get(timeout=30) for task_id in task_ids]
    celery.close()
    assert results == [
        {"event_id": f"EvBatch{n}", "type": f"kind_{n}", "handled": False} for n in range(40)
    ]


def test_task_ids_are_unique_and_recorded(redis_url: str, redis_client: redis.Redis) -> None:
    queue = "unique-check"  # no worker consumes it, so its length counts the pushes
    payloads: list[dict[str, object]] = [{"event_id": f"EvUnique{n}"} for n in range(2000)]
    task_ids = enqueue_many(redis_url, payloads, dedupe=True, queue=queue)
    assert len(set(task_ids)) == 2000
    assert redis_client.llen(queue) == 2000
    assert all(redis_client.exists(f"digests:task:{task_id}") for task_id in task_ids)
    # The same requests again are all duplicates: the original ids come back, nothing is pushed.
    assert enqueue_many(redis_url, payloads, dedupe=True, queue=queue) == task_ids
    assert redis_client.llen(queue) == 2000
    # Duplicates inside one batch are caught too.
    twice = [{"event_id": "EvTwice"}] * 10
    ids = enqueue_many(redis_url, twice, dedupe=True, queue=queue)
    assert len(set(ids)) == 1
    assert redis_client.llen(queue) == 2001
    redis_client.delete(queue)
