"""`celery -A jobs beat`: enqueue each schedule's slots from `schedules.yaml`, once, from one beat.

Celery's own schedulers keep their state in a local file and their cron maths in `crontab`; this
one reads `schedules.yaml` (croniter syntax, a zone per schedule), keeps its state in Redis, and
runs only while it holds the leader lock, so any number of beats may run: one leads, the others
wait and take over within a lock TTL of its death.

- **Lock.** `BEAT_LEADER` holds the leader's id with a TTL of `LOCK_INTERVALS` ticks, renewed
  every tick by a Lua script that renews only our own id, or takes the lock when it is free. A
  beat enqueues only within half a TTL of a renewal that succeeded, so it stops before any other
  beat can take over; every write of beat state is fenced by the lock. What remains
  is a pause of more than half a TTL between that check and the publish (a frozen VM): then two
  beats may both publish one slot, and the slot's `enqueued` key and the worker's claim (SET NX)
  still run it once.
- **What is due** comes from Redis at the start of every term (taking the lock, or a reload):
  each schedule's `last_slot`, and the cron and zone that cursor was counted in. A schedule never
  seen, or whose cron or zone changed, starts from now: no backlog. Within a term the heap of
  next slots is a cache of that state, written back after each batch of fires.
- **Catch-up.** Slots late by up to one and a half lock TTLs all run: that is a handover. Past
  that, beat was down: the newest missed slot runs once if within the schedule's `catchup`, and
  the older ones are recorded in `skipped`, found walking back from the newest so that a
  per-second cron after a long outage costs no more than `SKIPPED_LENGTH` steps.
- **Reload.** The file is checked every tick (`SchedulesFile`); an invalid version keeps the
  last good schedules running, and its errors are logged and kept in `BEAT_ERRORS`.
"""

from __future__ import annotations

import heapq
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import cached_property
from types import FrameType
from typing import Any

import celery.beat
import orjson
import redis
from kombu.exceptions import OperationalError

from jobs import inflight, keys, queue
from jobs.config import get_settings
from jobs.connections import UNREACHABLE, shared_redis, text, unreachable
from jobs.scheduling.due import basis, catch_up
from jobs.scheduling.file import SchedulesFile
from jobs.scheduling.lease import TAKEN, WRITE_BATCH, LeaderLock, RedisCommand
from jobs.scheduling.slots import Schedule, instant

logger = logging.getLogger(__name__)

# The lock outlives this many missed renewals (ticks); with the default tick, 10 s.
LOCK_INTERVALS = 10
# Policies under which Redis never evicts a key. `volatile-*` would spare beat's own state (no
# TTL) but may evict the slot claims and `enqueued` keys that make a slot run once.
SAFE_POLICIES = ("noeviction",)
# Waiting for Redis at start-up, as the worker waits for its broker: 1, 2, 4 … seconds, capped.
CONNECT_BACKOFF_MAX = 10.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

# A slot waiting in the heap: when it fires (epoch seconds, jitter included), whose, which.
Entry = tuple[float, str, datetime]


def stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def check_eviction_policy(client: redis.Redis) -> None:
    """Refuse to run on a Redis that may evict keys: a lost claim or cursor repeats a digest."""
    try:
        found = client.config_get("maxmemory-policy")
    except redis.ResponseError as error:  # CONFIG is often disabled on managed Redis
        logger.warning(
            "cannot read Redis' maxmemory-policy (%s): make sure it is noeviction, or Redis "
            "may evict the keys that make each slot run once",
            error,
        )
        return
    value = next(iter(found.values()), None) if found else None
    policy = None if value is None else text(value)
    if policy is None:
        logger.warning("Redis did not report its maxmemory-policy: make sure it is noeviction")
    elif policy not in SAFE_POLICIES:
        raise SystemExit(
            f"beat: Redis' maxmemory-policy is {policy!r}, so Redis may evict the keys that make "
            "each slot run once (slot claims, `enqueued` keys, beat's cursors). Set it to "
            "noeviction (`CONFIG SET maxmemory-policy noeviction`, or your Redis provider's "
            "maxmemory/eviction policy setting), then start beat again."
        )


class Scheduler(celery.beat.Scheduler):  # type: ignore[misc]  # Celery has no type hints
    """The beat scheduler for `schedules.yaml`; `jobs.celery` makes it `celery beat`'s default."""

    max_interval = 1.0  # so that lock renewal, reloads and lateness stay within a second

    def __init__(self, app: Any, *args: Any, **kwargs: Any) -> None:
        self.file = SchedulesFile(get_settings().schedules_file)
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.schedules: dict[str, Schedule] = {}
        self.errors: list[str] = []
        self.errors_since: str | None = None
        self.heap: list[Entry] = []
        self.pending: list[RedisCommand] = []  # fenced writes not yet sent
        self.leading: bool | None = None  # None until the first tick
        self.lease_until = 0.0
        self.standby_wait = 0.0
        self.reconciled = -inflight.RECONCILE_SECONDS
        self.down = ""  # why Redis did not answer at start-up
        super().__init__(app, *args, **kwargs)
        self.lock_ttl = LOCK_INTERVALS * float(self.max_interval)
        # A slot later than this was missed by an outage, not delayed by a handover (a lock TTL,
        # and the new leader's wake-up and first tick).
        self.grace = timedelta(seconds=1.5 * self.lock_ttl)

    @property
    def client(self) -> redis.Redis:
        return shared_redis()

    @cached_property
    def lock(self) -> LeaderLock:
        return LeaderLock(self.client, keys.BEAT_LEADER, self.id, self.lock_ttl)

    @property
    def info(self) -> str:
        lock = f"{keys.BEAT_LEADER} ({self.lock_ttl:g}s TTL)"
        return f"    . schedules -> {self.file.path}\n    . leader lock -> {lock}"

    def setup_schedule(self) -> None:
        """Check Redis can be trusted with the state, once it answers; the file is read at the
        first tick, once `beat_init` has set up Sentry to report its errors."""
        # Celery's own SIGTERM handler would ask for this scheduler while it is being made,
        # and so wait again: while waiting, a signal just ends beat.
        previous = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}
        try:
            attempt = 0
            while not self.checked():
                attempt += 1
                delay = min(CONNECT_BACKOFF_MAX, 2.0 ** (attempt - 1))
                logger.error("%s; trying again in %gs (attempt %d)", self.down, delay, attempt)
                time.sleep(delay)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def checked(self) -> bool:
        """Whether Redis answered (and its eviction policy is safe); `down` says why not."""
        try:
            check_eviction_policy(self.client)
        except UNREACHABLE as error:
            self.down = f"beat: {unreachable(get_settings().redis.url, error)}"
            return False
        return True

    def now(self) -> datetime:
        """The time; a method of its own so that a simulation (`bench/schedules.py`) can set it."""
        return datetime.now(UTC)

    def enqueue(self, schedule: Schedule, slot: datetime) -> None:
        """Queue the slot's run, once per slot however often asked (its `enqueued` key)."""
        queue.enqueue(self.client, queue.run_job(schedule, queue.Run(schedule.name, slot)))

    def tick(self) -> float:
        """Reload if the file changed, lead or wait, run what is due; the seconds to sleep."""
        try:
            if self.reload() and self.leading:
                self.plan()
            if not self.lead():
                return min(self.max_interval, self.standby_wait)
            self.reconcile()
            return self.fire_due()
        except (redis.RedisError, OperationalError) as error:
            # The next term starts again from Redis; a slot enqueued but not recorded is
            # enqueued again then, and its `enqueued` key makes that the same task.
            logger.warning("beat cannot reach Redis (%s); retrying", error)
            self.leading = False
            return float(self.max_interval)

    def reconcile(self) -> None:
        """Every few seconds, queue again the work whose worker stopped holding it."""
        if time.monotonic() < self.reconciled + inflight.RECONCILE_SECONDS:
            return
        inflight.reconcile(self.client, queue.QUEUE)
        self.reconciled = time.monotonic()

    def reload(self) -> bool:
        """Read the file if it changed; whether what beat runs, or the errors, changed."""
        if not self.file.refresh():
            return False
        loaded, path = self.file.loaded, self.file.path
        if loaded.errors:
            self.errors = list(loaded.errors)
            self.errors_since = self.now().isoformat()
            running = f"the last good {len(self.schedules)}" if self.schedules else "no"
            shown = "\n".join(loaded.errors)
            logger.error("%s is not valid; beat runs %s schedules:\n%s", path, running, shown)
            return True
        if self.errors:
            logger.info("%s is valid again", path)
        self.schedules = loaded.schedules
        self.errors, self.errors_since = [], None
        logger.info("beat runs %d schedules from %s", len(self.schedules), path)
        return True

    def lead(self) -> bool:
        """Renew the lock, or take it when free; a new term plans from Redis."""
        sent = time.monotonic()
        renewal = self.lock.renew()
        if not renewal.ours:
            if self.leading:
                logger.warning("beat %s lost the leader lock; standing by", self.id)
            elif self.leading is None:
                logger.info("beat %s stands by: another beat leads", self.id)
            self.leading = False
            # Wake when the leader's lock would lapse; a lock without a TTL is polled.
            self.standby_wait = renewal.left or float(self.max_interval)
            return False
        self.lease_until = sent + self.lock_ttl / 2
        if renewal.status == TAKEN or not self.leading:
            logger.info("beat %s leads", self.id)
            self.leading = True
            self.plan()
        return True

    def plan(self) -> None:
        """Start from Redis: each schedule's next slot after its cursor, new ones from now."""
        now = self.now()
        running = [s for s in self.schedules.values() if s.enabled]
        counted = {
            text(name): text(value) for name, value in self.client.hgetall(keys.BEAT_CRONS).items()
        }
        cursors = self.client.mget([keys.last_slot(s.name) for s in running]) if running else []
        writes: list[RedisCommand] = []
        heap: list[Entry] = []
        for schedule, cursor in zip(running, cursors, strict=True):
            same = counted.get(schedule.name) == basis(schedule)
            last = instant(text(cursor)) if same and cursor is not None else None
            if last is None:
                last = schedule.latest_slot(now)
                writes.append(("SET", keys.last_slot(schedule.name), last.isoformat()))
                writes.append(("HSET", keys.BEAT_CRONS, schedule.name, basis(schedule)))
            self.push(schedule, last, heap)
        gone = sorted(counted.keys() - {s.name for s in running})
        if gone:  # disabled or removed: should it come back, it starts from then
            writes.append(("HDEL", keys.BEAT_CRONS, *gone))
        if self.errors:
            state = orjson.dumps({"errors": self.errors, "since": self.errors_since}).decode()
            writes.append(("SET", keys.BEAT_ERRORS, state))
        else:
            writes.append(("DEL", keys.BEAT_ERRORS))
        self.heap = heap
        self.write(writes)

    def push(self, schedule: Schedule, after: datetime, heap: list[Entry]) -> None:
        """Queue the schedule's first slot after `after`, at its time plus its jitter."""
        try:
            slot = schedule.next_slot(after)
        except ValueError:  # one schedule without a next slot must not stop the others
            logger.exception("%s: no slot after %s; it will not run", schedule.name, after)
            return
        heapq.heappush(heap, ((slot + schedule.jitter_offset).timestamp(), schedule.name, slot))

    def fire_due(self) -> float:
        """Enqueue every slot whose time has come; the seconds until the next one."""
        now = self.now()
        try:
            while self.heap and self.heap[0][0] <= now.timestamp():
                if time.monotonic() >= self.lease_until:
                    self.flush()
                    if not self.lead():
                        return min(self.max_interval, self.standby_wait)
                    continue  # a new term has planned afresh
                _, name, slot = heapq.heappop(self.heap)
                schedule = self.schedules[name]
                due = catch_up(schedule, slot, now, self.grace)
                if due.skipped:
                    self.pending.append(
                        ("LPUSH", keys.skipped(name), *(s.isoformat() for s in due.skipped))
                    )
                    self.pending.append(
                        ("LTRIM", keys.skipped(name), "0", str(keys.SKIPPED_LENGTH - 1))
                    )
                    logger.warning(
                        "%s: skipped %d missed slot(s) %s … %s, older than its catchup",
                        name,
                        len(due.skipped),
                        due.skipped[0].isoformat(),
                        due.skipped[-1].isoformat(),
                    )
                if due.fire is not None:
                    self.enqueue(schedule, due.fire)
                    late = (self.now() - due.fire - schedule.jitter_offset).total_seconds()
                    logger.info(
                        "%s: enqueued slot %s, %.3fs late", name, due.fire.isoformat(), late
                    )
                self.pending.append(("SET", keys.last_slot(name), due.newest.isoformat()))
                self.push(schedule, due.newest, self.heap)
                if len(self.pending) >= WRITE_BATCH:
                    self.flush()
        finally:
            self.flush()
        if not self.heap:
            return float(self.max_interval)
        return max(0.0, min(self.max_interval, self.heap[0][0] - self.now().timestamp()))

    def flush(self) -> None:
        """Record the slots dealt with so far; a crash before this only repeats their enqueue,
        which their `enqueued` keys turn into the same task."""
        pending, self.pending = self.pending, []
        self.write(pending)

    def write(self, commands: Sequence[RedisCommand]) -> None:
        """Apply beat's writes only while the lock is ours; a deposed beat writes nothing."""
        if not self.lock.write(commands):
            if self.leading:
                logger.warning("beat %s lost the leader lock; standing by", self.id)
            self.leading = False
            self.lease_until = 0.0

    def close(self) -> None:
        """Hand the lock over at once on a clean exit, rather than after its TTL."""
        if self.leading:
            try:
                # SIGTERM may land in the middle of `fire_due`: record what it enqueued first.
                self.flush()
                self.lock.release()
                self.leading = False
            except redis.RedisError as error:
                logger.warning("beat could not release the leader lock (%s)", error)
        super().close()
