"""`POST /tick` and `digests tick`: what one beat tick does, for an external scheduler.

For each enabled schedule, the slots that came due since its cursor (the `last_slot` beat keeps)
are dealt with as beat deals with them after a delay: the newest runs if it is within the
schedule's `catchup`, older ones are recorded as skipped. So tick at least as often as the most
frequent schedule's slots: with ticks every 5 minutes, a schedule of every minute runs every 5.
Each slot's run is queued through its `enqueued` key, so beat, triggers and other ticks asking
for the same slot get the same task; the cursor moves only forward (a transaction on it), so a
late or doubled tick changes nothing.
A paused schedule's slot is queued too: its worker records it as skipped with reason `paused`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import redis

from jobs import keys, queue
from jobs.connections import text
from jobs.scheduling import pause
from jobs.scheduling.due import basis, catch_up
from jobs.scheduling.slots import Schedule, instant

# Ticks are minutes apart: any lateness is a delay, and only the newest slot due runs.
GRACE = timedelta(0)
ATTEMPTS = 5  # of a cursor's transaction, when another tick or beat moved it meanwhile


@dataclass
class Ticked:
    """What a tick did: the runs it queued (or found queued) and the slots it skipped."""

    enqueued: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    started: list[str] = field(default_factory=list)  # schedules whose counting began now

    def as_dict(self) -> dict[str, Any]:
        return {"enqueued": self.enqueued, "skipped": self.skipped, "started": self.started}


def tick(client: redis.Redis, schedules: Iterable[Schedule], now: datetime) -> Ticked:
    """Deal with every enabled schedule's due slots, once however many ticks ask."""
    ticked = Ticked()
    for schedule in schedules:
        if schedule.enabled:
            due_slots(client, schedule, now, ticked)
    return ticked


def due_slots(client: redis.Redis, schedule: Schedule, now: datetime, ticked: Ticked) -> None:
    cursor_key = keys.last_slot(schedule.name)
    for _ in range(ATTEMPTS):
        with client.pipeline() as pipe:
            try:
                pipe.watch(cursor_key, keys.BEAT_CRONS)  # type: ignore[no-untyped-call]
                cursor = pipe.get(cursor_key)
                counted = pipe.hget(keys.BEAT_CRONS, schedule.name)
                last = instant(text(cursor)) if cursor is not None else None
                if last is None or counted is None or text(counted) != basis(schedule):
                    # New to the scheduler, or its cron changed: it starts from now, no backlog.
                    pipe.multi()
                    pipe.set(cursor_key, schedule.latest_slot(now).isoformat())
                    pipe.hset(keys.BEAT_CRONS, schedule.name, basis(schedule))
                    pipe.execute()
                    ticked.started.append(schedule.name)
                    return
                first = schedule.next_slot(last)
                if first + schedule.jitter_offset > now:
                    return  # nothing due yet
                due = catch_up(schedule, first, now, GRACE)
                if due.fire is not None:
                    run = queue.Run(schedule.name, due.fire)
                    enqueued = queue.enqueue(client, queue.run_job(schedule, run))
                pipe.multi()
                if due.skipped:
                    slots = [slot.isoformat() for slot in due.skipped]
                    pipe.lpush(keys.skipped(schedule.name), *slots)
                    pipe.ltrim(keys.skipped(schedule.name), 0, keys.SKIPPED_LENGTH - 1)
                pipe.set(cursor_key, due.newest.isoformat())
                pipe.execute()
            except redis.WatchError:
                continue  # beat or another tick moved the cursor: look again
        if due.fire is not None:
            held = pause.paused(client, schedule.name, now)
            ticked.enqueued.append(
                {
                    "schedule": schedule.name,
                    "slot": due.fire.isoformat(),
                    "task_id": enqueued.task_id,
                    "duplicate": enqueued.duplicate,
                    **({"paused": True} if held else {}),
                }
            )
        why = "older than catchup" if due.fire is None else "a later slot was due"
        ticked.skipped.extend(
            {"schedule": schedule.name, "slot": slot.isoformat(), "reason": why}
            for slot in due.skipped
        )
        return
