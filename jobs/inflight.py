"""Work accepted but not finished: each queued task's journal entry and lease, and the
reconciler that queues again what nobody holds.

kombu's Redis transport can lose a message a worker fetched just before Redis died, and keeps
the message of a worker that died in `unacked` until its visibility timeout (hours). So every
producer journals the message it pushes (`jobs.queue`'s script does, in the same step), the
task holds a short lease while it runs, and the leading beat pushes again any journaled message
that is neither waiting in the queue nor leased. A copy that finds its task done, or leased by
another copy, does nothing, so pushing again is always safe.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import datetime

import redis

from jobs import keys
from jobs.connections import text

logger = logging.getLogger(__name__)

# A journaled task is checked this long after it was queued, or after its last sign of life.
PICKUP_SECONDS = 30.0
# A running task's lease, renewed every second (when it also looks whether its worker is
# stopping), so it lapses this long after its worker died.
LEASE_SECONDS = 15
RENEW_SECONDS = 1.0
# How long a worker's "shutting down" lasts: longer than any platform's grace before SIGKILL.
STOPPING_SECONDS = 600
# How often the leading beat reconciles, and how many entries it looks at each time.
RECONCILE_SECONDS = 10.0
RECONCILE_BATCH = 200
# A task queued again this often without ever finishing kills its worker each time (a poison
# message): it is dropped, with an error, rather than cycled for ever.
MAX_REQUEUES = 5
# A copy that finds its task held by another looks again after this.
HOLDER_WAIT_SECONDS = 5.0
# kombu's Redis transport keeps fetched, unacknowledged messages here (its default names).
UNACKED = "unacked"
UNACKED_INDEX = "unacked_index"

# KEYS: lease, task record, journal. ARGV: task id, owner, lease seconds, when the journal next
# checks it (as the lease lapses). Returns 1 when the lease is now the owner's, 0 when another
# copy holds it, -1 when done.
ACQUIRE = """
if redis.call('GET', KEYS[2]) == 'done' then return -1 end
if redis.call('SET', KEYS[1], ARGV[2], 'NX', 'EX', ARGV[3]) then
  redis.call('ZADD', KEYS[3], 'XX', ARGV[4], ARGV[1])
  return 1
end
return 0
"""
# KEYS: lease, journal. ARGV: task id, owner, lease seconds, the next check. Renews the lease,
# and moves the journal's check to when it would lapse, only while the lease is the owner's.
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[2] then
  redis.call('ZADD', KEYS[2], 'XX', ARGV[4], ARGV[1])
  return redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return 0
"""
# KEYS: lease, task record, journal, requeue counts. ARGV: task id, owner, record TTL, then
# the next check (epoch seconds), or '' when the task is done.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[2] then redis.call('DEL', KEYS[1]) end
if ARGV[4] == '' then
  if redis.call('EXISTS', KEYS[2]) == 1 then
    redis.call('SET', KEYS[2], 'done', 'KEEPTTL')
  else
    redis.call('SET', KEYS[2], 'done', 'EX', ARGV[3])
  end
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('HDEL', KEYS[4], ARGV[1])
else
  redis.call('ZADD', KEYS[3], 'XX', ARGV[4], ARGV[1])
end
return 1
"""
# KEYS: journal, task record, lease, queue, kombu's unacked hash and index, requeue counts.
# ARGV: task id, next check, most requeues. Pushes the journaled message again unless it is
# leased, waiting in the queue, or finished; returns 1 when it did, 2 when it dropped it instead.
REPUSH = """
local message = redis.call('GET', KEYS[2])
if not message or message == 'done' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
if redis.call('LPOS', KEYS[4], message, 'RANK', -1) then return 0 end
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
if redis.call('HINCRBY', KEYS[7], ARGV[1], 1) > tonumber(ARGV[3]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('SET', KEYS[2], 'done', 'KEEPTTL')
  redis.call('HDEL', KEYS[7], ARGV[1])
  return 2
end
redis.call('RPUSH', KEYS[4], message)
return 1
"""


def check_after(now: float) -> float:
    """When a task queued (or last seen) at `now` is next looked at."""
    return now + PICKUP_SECONDS


def stopping(client: redis.Redis, worker: str) -> None:
    """Tell the tasks of `worker` (its node name) that it is shutting down: each hands its work
    back at its next step, rather than holding it until the platform kills the process."""
    client.set(keys.stopping(worker), "1", ex=STOPPING_SECONDS)


class Lease:
    """A running task's hold on its work, renewed by a thread while the task runs; the thread
    also sets `handing_back` once the task's worker is shutting down."""

    def __init__(self, client: redis.Redis, task_id: str, worker: str = "") -> None:
        self.client = client
        self.task_id = task_id
        self.worker = worker
        self.owner = uuid.uuid4().hex
        self.stop = threading.Event()
        self.handing_back = threading.Event()
        self.keys = [
            keys.lease(task_id),
            keys.task(task_id),
            keys.INFLIGHT,
            keys.INFLIGHT_REQUEUES,
        ]

    def acquire(self) -> bool | None:
        """Hold the task: True; False while another copy of it holds it; None when it is done."""
        held = self.client.eval(
            ACQUIRE, 3, *self.keys[:3], self.task_id, self.owner, LEASE_SECONDS, self.lapse()
        )
        if held == -1:
            logger.info("task %s is done already: this copy does nothing", self.task_id)
            return None
        if held == 0:
            logger.info("task %s is held by another copy: this one waits", self.task_id)
            return False
        threading.Thread(target=self.renew, daemon=True, name=f"lease {self.task_id}").start()
        return True

    @staticmethod
    def lapse() -> float:
        """When a lease taken or renewed now lapses: the journal looks at its task then."""
        return time.time() + LEASE_SECONDS

    def renew(self) -> None:
        while not self.stop.wait(RENEW_SECONDS):
            try:
                self.client.eval(
                    RENEW,
                    2,
                    self.keys[0],
                    keys.INFLIGHT,
                    self.task_id,
                    self.owner,
                    LEASE_SECONDS,
                    self.lapse(),
                )
                if self.worker and self.client.exists(keys.stopping(self.worker)):
                    self.handing_back.set()
            except redis.RedisError as error:  # Redis may come back before the lease lapses
                logger.warning("task %s could not renew its lease: %s", self.task_id, error)

    def release(self, done: bool, retry_in: float = 0.0) -> None:
        """Let go: the task is done, or it is next looked at `retry_in` seconds from now."""
        self.stop.set()
        then = "" if done else str(check_after(time.time() + retry_in))
        self.client.eval(
            RELEASE, 4, *self.keys, self.task_id, self.owner, keys.TASK_RECORD_TTL, then
        )


def seconds_until(when: float | int | datetime | None) -> float:
    """A Celery retry's `when` (a countdown or an ETA) in seconds from now."""
    if isinstance(when, datetime):
        return max(0.0, when.timestamp() - time.time())
    return float(when or 0)


def reconcile(client: redis.Redis, queue: str) -> list[str]:
    """Push again the journaled tasks due a check that nobody holds; their ids."""
    now = time.time()
    due = client.zrangebyscore(keys.INFLIGHT, "-inf", now, start=0, num=RECONCILE_BATCH)
    pushed, dropped = [], []
    script = client.register_script(REPUSH)
    for raw in due:
        task_id = text(raw)  # type: ignore[arg-type]  # members only, without scores
        script_keys = [
            keys.INFLIGHT,
            keys.task(task_id),
            keys.lease(task_id),
            queue,
            UNACKED,
            UNACKED_INDEX,
            keys.INFLIGHT_REQUEUES,
        ]
        done = script(keys=script_keys, args=[task_id, check_after(now), MAX_REQUEUES])
        if done == 1:
            pushed.append(task_id)
        elif done == 2:
            dropped.append(task_id)
    if dropped:
        logger.error(
            "dropped %d task(s) queued again %d times without finishing (each time its worker "
            "died): %s",
            len(dropped),
            MAX_REQUEUES,
            ", ".join(dropped[:10]),
        )
    if pushed:
        logger.warning(
            "queued again %d task(s) whose worker stopped holding them: %s",
            len(pushed),
            ", ".join(pushed[:10]),
        )
    return pushed
