"""A schedule's state as people see it: its next slots, its last slot and how that run ended.

One report serves `GET /schedules`, `digests status` and `/digest schedules`. The caller reads
the file (`SchedulesFile`) and sends `queue_reads` in one Redis pipeline, sync or
async; `report` puts the two together without I/O. `requested_slot` is the slot a trigger
means, for `POST /triggers` and `digests trigger` alike.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

import cron_descriptor
import redis

from jobs import keys
from jobs.connections import text
from jobs.digest.ledger import RunRecord
from jobs.errors import ScheduleError
from jobs.scheduling import pause
from jobs.scheduling.file import Loaded
from jobs.scheduling.slots import Schedule, instant, parse_slot

NEXT_SLOTS = 3
# Finished runs looked through for the last slot's record; manual runs may come in between.
HISTORY_SCAN = 20


def requested_slot(schedule: Schedule, value: str | None, now: datetime) -> datetime:
    """The slot a trigger asks for: the current one, or `value`, which must be a past slot of
    the cron. Raises `ScheduleError` naming the nearest slots when it is not."""
    current = schedule.latest_slot(now)
    if value is None:
        return current
    moment = parse_slot(value, schedule)
    slot = schedule.latest_slot(moment)
    if not schedule.is_slot(moment):
        raise ScheduleError(
            f"{value} is not a slot of {schedule.name} ({schedule.cron!r} in {schedule.timezone}):"
            f" the nearest are {slot.isoformat()} and {schedule.next_slot(moment).isoformat()}"
        )
    if slot > current:
        raise ScheduleError(
            f"{value} has not come yet: the current slot of {schedule.name} is "
            f"{current.isoformat()}"
        )
    return slot


class Reads(Protocol):
    """What `queue_reads` needs of a pipeline: redis-py's sync and asyncio ones both have it."""

    def get(self, name: str) -> object: ...

    def lrange(self, name: str, start: int, end: int) -> object: ...


# The replies `queue_reads` asks for per schedule, in order.
READS = 4


def queue_reads(pipe: Reads, loaded: Loaded) -> None:
    """Queue the reads `report` needs: each schedule's last slot, skipped slots and history."""
    for name in loaded.schedules:
        pipe.get(keys.last_slot(name))
        pipe.lrange(keys.skipped(name), 0, -1)
        pipe.lrange(keys.history(name), 0, HISTORY_SCAN - 1)
        pipe.get(keys.paused(name))


def report(loaded: Loaded, replies: list[Any], now: datetime) -> dict[str, Any]:
    """Every schedule's status from the file and the pipeline's `replies`, and the file's errors."""
    rows = []
    for index, schedule in enumerate(loaded.schedules.values()):
        last, skipped, history, held = replies[READS * index : READS * (index + 1)]
        row = schedule_status(
            schedule,
            None if last is None else text(last),
            [text(slot) for slot in skipped],
            [RunRecord.from_json(record) for record in history],
            now,
        )
        row["paused"] = pause.current(held, now)
        rows.append(row)
    return {"errors": list(loaded.errors), "schedules": rows}


def read(client: redis.Redis, loaded: Loaded, now: datetime) -> dict[str, Any]:
    """`report`, read with a synchronous client (the CLI, a worker)."""
    with client.pipeline(transaction=False) as pipe:
        queue_reads(pipe, loaded)
        return report(loaded, pipe.execute(), now)


def schedule_status(
    schedule: Schedule,
    last_slot: str | None,
    skipped: list[str],
    history: list[RunRecord],
    now: datetime,
) -> dict[str, Any]:
    # A disabled schedule has no next run; showing its cron's slots would say otherwise.
    upcoming = schedule.next_slots(now, NEXT_SLOTS) if schedule.enabled else []
    record = last_record(history, last_slot)
    return {
        "name": schedule.name,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "enabled": schedule.enabled,
        "next": [
            {"local": slot.isoformat(), "utc": slot.astimezone(UTC).isoformat()}
            for slot in upcoming
        ],
        "last_slot": last_slot,
        "last_run": None if record is None else record.outcome(),
        "skipped": skipped,
        "slack_calls": None if record is None else slack_calls(record),
    }


def last_record(history: list[RunRecord], last_slot: str | None) -> RunRecord | None:
    """The last slot's run when it has finished, else the newest run."""
    wanted = instant(last_slot)
    return next(
        (r for r in history if wanted is not None and instant(r.slot) == wanted),
        history[0] if history else None,
    )


def slack_calls(record: RunRecord) -> dict[str, Any]:
    """What the run asked of Slack: calls per method, the 429s among them, and how late it
    finished after its slot."""
    return {
        "calls": record.calls or {},
        "rate_limited": record.rate_limited or {},
        "lateness": record.lateness,
    }


def calls_line(totals: dict[str, int], limited: dict[str, int]) -> str:
    """`conversations.history 12 (2 answered 429), chat.postMessage 4`, busiest first."""
    ordered = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(
        f"{method} {count}" + (f" ({limited[method]} answered 429)" if limited.get(method) else "")
        for method, count in ordered
    )


def in_words(cron: str) -> str:
    """The cron as a person reads it ("At 09:00, only on Monday"); croniter's seconds come last,
    cron-descriptor's first. An expression it cannot read is shown as it is."""
    fields = cron.split()
    if len(fields) == 6:
        fields = [fields[-1], *fields[:-1]]
    options = cron_descriptor.Options()
    options.use_24hour_time_format = True
    try:
        return str(cron_descriptor.get_description(" ".join(fields), options))
    except Exception:  # cron-descriptor's errors share no base class; the cron itself will do
        return cron


def outcome(row: dict[str, Any]) -> str:
    """The last run of a `report` row in words: `failed (slot): why`, or `never run`."""
    run = row["last_run"]
    if run is None:
        return "never run"
    why = run.get("error") or run.get("reason")
    kind = "manual run " if run.get("manual") else ""
    return f"{kind}{run['status']} ({run['slot']})" + (f": {why}" if why else "")
