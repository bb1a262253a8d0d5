"""An asyncio producer of Celery task messages, for the web process's fast path.

Celery's own publish path is synchronous and costly (a client per publish, `saferepr` of the
arguments). This writes the same message, Celery protocol 2 in kombu's Redis envelope, with
`redis.asyncio`, and sends all the requests that arrive while one round trip is in flight in
the next one: one Lua script claims each dedupe key, records the task id and pushes the message.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio

from jobs import keys
from jobs.connections import text

# The embed part of a protocol 2 body: no callbacks, errbacks, chain or chord.
EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
ORIGIN = f"{os.getpid()}@{socket.gethostname()}"
MAX_BATCH = 256

# KEYS: queue, then per job its dedupe key ("" for none) and its task record key.
# ARGV: record TTL, then per job its task id, its message and its dedupe key's TTL.
# Returns, per job, the id of the task that owns its dedupe key: its own id when it was pushed.
# The push is the first write, so a failure (even OOM) leaves no claim behind it that could
# make Slack's retry look like a duplicate.
ENQUEUE = """
local out, messages, claimed = {}, {}, {}
for i = 1, (#KEYS - 1) / 2 do
  local claim, id = KEYS[2 * i], ARGV[3 * i - 1]
  local owner = claim ~= '' and (redis.call('GET', claim) or claimed[claim])
  if owner then
    out[i] = owner
  else
    if claim ~= '' then claimed[claim] = id end
    messages[#messages + 1] = ARGV[3 * i]
    out[i] = id
  end
end
if #messages > 0 then redis.call('LPUSH', KEYS[1], unpack(messages)) end
for i = 1, (#KEYS - 1) / 2 do
  local id = ARGV[3 * i - 1]
  if out[i] == id then
    if KEYS[2 * i] ~= '' then redis.call('SET', KEYS[2 * i], id, 'EX', ARGV[3 * i + 1]) end
    redis.call('SET', KEYS[2 * i + 1], '1', 'EX', ARGV[1])
  end
end
return out
"""


@dataclass(frozen=True)
class Enqueued:
    """The task that holds the request: a new one, or the one an earlier duplicate became."""

    task_id: str
    duplicate: bool


@dataclass(frozen=True)
class Job:
    task_id: str
    message: bytes
    dedupe_key: str
    dedupe_ttl: int


# A task's (hard, soft) time limits in seconds, as Celery's `timelimit` header holds them.
TimeLimit = tuple[float | None, float | None]


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
    body = orjson.dumps([args, {}, EMBED])
    return orjson.dumps(
        {
            "body": base64.b64encode(body).decode(),
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
                "body_encoding": "base64",
                # Unique per message is all kombu needs of it; the task id is.
                "delivery_tag": task_id,
            },
        }
    )


class Producer:
    """Enqueues tasks durably: `enqueue` returns only once the message is in Redis."""

    def __init__(self, client: redis.asyncio.Redis, queue: str) -> None:
        self.client = client
        self.queue = queue
        self.reply_to = str(uuid.uuid4())
        self.script = client.register_script(ENQUEUE)
        self.pending: list[tuple[Job, asyncio.Future[Enqueued]]] = []
        self.flushing = False

    async def enqueue(
        self,
        task: str,
        args: list[Any],
        *,
        argsrepr: str,
        dedupe_key: str = "",
        dedupe_ttl: int = keys.EVENT_DEDUPE_TTL,
        timelimit: TimeLimit = (None, None),
    ) -> Enqueued:
        """Push one task; with `dedupe_key`, only the first request for that key (for
        `dedupe_ttl` seconds) is pushed.

        Raises the Redis error when the message could not be written; then nothing was claimed.
        """
        task_id = str(uuid.uuid4())
        message = task_message(
            task,
            args,
            task_id=task_id,
            queue=self.queue,
            argsrepr=argsrepr,
            reply_to=self.reply_to,
            timelimit=timelimit,
        )
        future: asyncio.Future[Enqueued] = asyncio.get_running_loop().create_future()
        self.pending.append((Job(task_id, message, dedupe_key, dedupe_ttl), future))
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
        script_keys: list[str] = [self.queue]
        script_args: list[str | bytes | int] = [keys.TASK_RECORD_TTL]
        for job, _ in batch:
            script_keys += [job.dedupe_key, keys.task(job.task_id)]
            script_args += [job.task_id, job.message, job.dedupe_ttl]
        try:
            owners = await self.script(keys=script_keys, args=script_args)
        except Exception as error:  # every waiter gets the failure, none is left hanging
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (job, future), owner in zip(batch, owners, strict=True):
            owner_id = text(owner)
            if not future.done():
                future.set_result(Enqueued(owner_id, duplicate=owner_id != job.task_id))
