"""The one way to enqueue: task names, a run's identity and time limits, and the producers.

The web (asyncio, batched), beat, tick and the CLI (sync) all queue through here, and none of
them imports the tasks. A job is written as Celery's own publish would write it (protocol 2 in
kombu's Redis envelope; the body as text, which kombu reads as it reads base64), but without
Celery's costly publish path (a client per publish,
`saferepr` of the arguments): one Lua script claims the job's dedupe key, records the task id
and pushes the message, so "one task per key" is kept in one place for every producer. The
async producer sends all the requests that arrive while one round trip is in flight in the next.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import redis
import redis.asyncio

from jobs import inflight, keys
from jobs.connections import text
from jobs.scheduling.slots import MAX_TIMEOUT, Schedule

QUEUE = "celery"
# The tasks' names, as `jobs.tasks` registers them and as messages in flight carry them.
EVENT_TASK = "jobs.tasks.handle_event"
COMMAND_TASK = "jobs.tasks.handle_command"
INTERACTION_TASK = "jobs.tasks.handle_interaction"
RUN_TASK = "jobs.tasks.run_digest"
# The hard limit of any task: a run's own (its `timeout`, plus the time to record it) replaces it.
MAX_TASK_SECONDS = int(MAX_TIMEOUT.total_seconds())

# The embed part of a protocol 2 body: no callbacks, errbacks, chain or chord.
EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
ORIGIN = f"{os.getpid()}@{socket.gethostname()}"
MAX_BATCH = 256
# Where results would be announced: Redis' result backend does not use it; one per process.
REPLY_TO = str(uuid.uuid4())

# KEYS: queue, the journal, then per job its dedupe key ("" for none) and its task record key,
# which holds the message until the task is done (for the journal to push it again). ARGV: record
# TTL, when the journal next checks the jobs, then per job its task id, its message and its
# dedupe key's TTL.
# Returns, per job, the id of the task that owns its dedupe key: its own id when it was pushed.
# The push is the first write, so a failure (even OOM) leaves no claim behind it that could
# make Slack's retry look like a duplicate.
ENQUEUE = """
local out, messages, claimed = {}, {}, {}
local jobs = (#KEYS - 2) / 2
for i = 1, jobs do
  local claim, id = KEYS[2 * i + 1], ARGV[3 * i]
  local owner = claim ~= '' and (redis.call('GET', claim) or claimed[claim])
  if owner then
    out[i] = owner
  else
    if claim ~= '' then claimed[claim] = id end
    messages[#messages + 1] = ARGV[3 * i + 1]
    out[i] = id
  end
end
if #messages > 0 then redis.call('LPUSH', KEYS[1], unpack(messages)) end
for i = 1, jobs do
  local id = ARGV[3 * i]
  if out[i] == id then
    if KEYS[2 * i + 1] ~= '' then redis.call('SET', KEYS[2 * i + 1], id, 'EX', ARGV[3 * i + 2]) end
    redis.call('SET', KEYS[2 * i + 2], ARGV[3 * i + 1], 'EX', ARGV[1])
    redis.call('ZADD', KEYS[2], ARGV[2], id)
  end
end
return out
"""


@dataclass(frozen=True)
class Enqueued:
    """The task that holds the request: a new one, or the one an earlier duplicate became."""

    task_id: str
    duplicate: bool


# A task's (hard, soft) time limits in seconds, as Celery's `timelimit` header holds them.
TimeLimit = tuple[float | None, float | None]


@dataclass(frozen=True)
class Job:
    """A task to queue; with `dedupe_key`, only the first job for that key (for `dedupe_ttl`
    seconds) is queued, and later ones get its task id."""

    task: str
    args: list[Any]
    argsrepr: str
    dedupe_key: str = ""
    dedupe_ttl: int = keys.EVENT_DEDUPE_TTL
    timelimit: TimeLimit = (None, None)


@dataclass(frozen=True)
class Run:
    """One run of a schedule: a cron slot, or an ad-hoc (manual) moment. Its id is made here,
    once, from the schedule and the slot, and travels with the run from then on."""

    schedule: str
    slot: datetime  # aware, in the schedule's zone
    manual: bool = False
    by: str = ""  # who asked for a manual run: a Slack user ID, `cli:<user>`, `trigger`

    @property
    def id(self) -> str:
        """The run's name: its schedule and slot, the wall-clock time with its offset."""
        return f"{self.schedule}@{self.slot.isoformat()}"


def time_limits(schedule: Schedule) -> tuple[float, float]:
    """(hard, soft) seconds: at the soft one, the schedule's `timeout`, the run records itself
    as timed out, and the hard one leaves it half a minute to do so."""
    seconds = schedule.timeout.total_seconds()
    return seconds + 30, seconds


def run_job(schedule: Schedule, run: Run, dedupe_key: str = "") -> Job:
    """The job of a run, keyed by its id (one task per slot) unless another key is given (an
    `Idempotency-Key`'s)."""
    args: list[object] = [run.schedule, run.slot.isoformat(), run.manual]
    args += [run.by] if run.by else []
    return Job(
        RUN_TASK,
        args,
        repr(tuple(args)),
        dedupe_key or keys.enqueued(run.id),
        keys.RUN_TTL,
        time_limits(schedule),
    )


def task_message(
    task: str,
    args: list[Any],
    *,
    task_id: str,
    queue: str,
    argsrepr: str,
    reply_to: str,
    timelimit: TimeLimit = (None, None),
) -> bytes:
    """A task message as kombu's Redis transport stores it, for a Celery worker to execute."""
    return orjson.dumps(
        {
            # The body as text: kombu decodes a body by its `body_encoding`, and utf-8 means
            # as it is. Celery's base64 makes a message a third larger and costs an encoding.
            "body": orjson.dumps([args, {}, EMBED]).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {
                "lang": "py",
                "task": task,
                "id": task_id,
                "shadow": None,
                "eta": None,
                "expires": None,
                "group": None,
                "group_index": None,
                "retries": 0,
                "timelimit": list(timelimit),
                "root_id": task_id,
                "parent_id": None,
                "argsrepr": argsrepr,
                "kwargsrepr": "{}",
                "origin": ORIGIN,
                "ignore_result": False,
                "replaced_task_nesting": 0,
                "stamped_headers": None,
                "stamps": {},
            },
            "properties": {
                "correlation_id": task_id,
                "reply_to": reply_to,
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": queue},
                "priority": 0,
                "body_encoding": "utf-8",
                # Unique per message is all kombu needs of it; the task id is.
                "delivery_tag": task_id,
            },
        }
    )


def new_task_ids(count: int) -> list[str]:
    """Random ids in UUID form, as Celery makes them, from one read of the system's randomness
    for the whole batch: `uuid4()` a job was a twentieth of the web's time a request."""
    raw = os.urandom(16 * count).hex()
    return [
        f"{raw[i : i + 8]}-{raw[i + 8 : i + 12]}-{raw[i + 12 : i + 16]}-"
        f"{raw[i + 16 : i + 20]}-{raw[i + 20 : i + 32]}"
        for i in range(0, 32 * count, 32)
    ]


def script_input(
    queue: str, jobs: Sequence[Job]
) -> tuple[list[str], list[str | bytes | int | float], list[str]]:
    """`ENQUEUE`'s keys and arguments for these jobs, and the task id each job would get."""
    script_keys: list[str] = [queue, keys.INFLIGHT]
    script_args: list[str | bytes | int | float] = [
        keys.TASK_RECORD_TTL,
        inflight.check_after(time.time()),
    ]
    task_ids = new_task_ids(len(jobs))
    for job, task_id in zip(jobs, task_ids, strict=True):
        message = task_message(
            job.task,
            job.args,
            task_id=task_id,
            queue=queue,
            argsrepr=job.argsrepr,
            reply_to=REPLY_TO,
            timelimit=job.timelimit,
        )
        script_keys += [job.dedupe_key, keys.task(task_id)]
        script_args += [task_id, message, job.dedupe_ttl]
    return script_keys, script_args, task_ids


def enqueue(client: redis.Redis, job: Job, queue: str = QUEUE) -> Enqueued:
    """Queue one job and return once it is in Redis (beat, tick, the CLI, a worker).

    Raises the Redis error when the message could not be written; then nothing was claimed.
    """
    script_keys, script_args, (task_id,) = script_input(queue, [job])
    (owner,) = client.register_script(ENQUEUE)(keys=script_keys, args=script_args)
    return Enqueued(text(owner), duplicate=text(owner) != task_id)


class Producer:
    """Enqueues jobs durably for the web process: `enqueue` returns once the message is in
    Redis, and the jobs of concurrent requests share one round trip."""

    def __init__(self, client: redis.asyncio.Redis, queue: str = QUEUE) -> None:
        self.client = client
        self.queue = queue
        self.script = client.register_script(ENQUEUE)
        self.pending: list[tuple[Job, asyncio.Future[Enqueued]]] = []
        self.flushing = False

    async def enqueue(self, job: Job) -> Enqueued:
        """Push one job. Raises the Redis error when the message could not be written; then
        nothing was claimed."""
        future: asyncio.Future[Enqueued] = asyncio.get_running_loop().create_future()
        self.pending.append((job, future))
        if not self.flushing:
            self.flushing = True
            asyncio.get_running_loop().create_task(self.flush())
        return await future

    async def flush(self) -> None:
        """Send what is pending, in batches, until nothing is left."""
        try:
            while self.pending:
                batch, self.pending = self.pending[:MAX_BATCH], self.pending[MAX_BATCH:]
                await self.send(batch)
        finally:
            self.flushing = False

    async def send(self, batch: list[tuple[Job, asyncio.Future[Enqueued]]]) -> None:
        script_keys, script_args, task_ids = script_input(self.queue, [job for job, _ in batch])
        try:
            owners = await self.script(keys=script_keys, args=script_args)
        except Exception as error:  # every waiter gets the failure, none is left hanging
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), task_id, owner in zip(batch, task_ids, owners, strict=True):
            owner_id = text(owner)
            if not future.done():
                future.set_result(Enqueued(owner_id, duplicate=owner_id != task_id))
