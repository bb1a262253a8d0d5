"""Pause: a schedule's slots are recorded as skipped (reason `paused`) until someone resumes it,
or until its `until` passes and it resumes by itself.

Operational state in Redis, apart from `enabled:` in `schedules.yaml` (the file stays the
source of truth for what runs; a pause is what a person did today). The pause key expires at
`until`, so nothing has to wake up to resume it. Every pause and resume is kept in the
schedule's action log, with who and when.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import redis

from jobs import keys
from jobs.errors import ScheduleError

# The longest pause `until` may ask for; past it, `enabled: false` in the file says it better.
LONGEST = timedelta(days=366)
MAX_REASON = 300
DURATION = re.compile(r"(\d{1,4})\s*(m|min|mins|minutes?|h|hours?|d|days?|w|weeks?)", re.IGNORECASE)
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
EXAMPLES = "a duration like 2h, 1d or 1w, a date like 2026-12-24, or a time like 2026-12-24T09:00"


@dataclass(frozen=True)
class Pause:
    who: str  # a Slack user ID, or `cli:<user>` for `digests pause`
    when: str  # ISO-8601, when it was paused
    until: str | None  # ISO-8601, when it resumes by itself; None: until resumed
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_until(value: str, now: datetime, zone: ZoneInfo) -> datetime:
    """When a pause asked "until `value`" ends: after a duration, at a date's midnight or at a
    time, in `zone` unless it says its offset. `ScheduleError` for the past or nonsense."""
    text = value.strip()
    found = DURATION.fullmatch(text)
    if found:
        amount = int(found[1])
        until = now + timedelta(**{UNITS[found[2][0].lower()]: amount})
    else:
        until = moment(text, zone)
    if until <= now:
        raise ScheduleError(f"pause until {value!r}: that is in the past")
    if until - now > LONGEST:
        raise ScheduleError(
            f"pause until {value!r}: at most a year ahead; to stop a schedule for longer, "
            "set `enabled: false` in the schedules file"
        )
    return until


def moment(text: str, zone: ZoneInfo) -> datetime:
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), zone)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ScheduleError(f"pause until {text!r} is not {EXAMPLES}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


def pause(
    client: redis.Redis,
    schedule: str,
    who: str,
    now: datetime,
    until: datetime | None = None,
    reason: str = "",
) -> Pause:
    """Pause the schedule (again, if it was: the latest pause counts) and log it."""
    state = Pause(who, now.isoformat(), until.isoformat() if until else None, reason[:MAX_REASON])
    pipe = client.pipeline()
    pipe.set(keys.paused(schedule), orjson.dumps(state.as_dict()))
    if until is not None:
        pipe.expireat(keys.paused(schedule), int(until.timestamp()) + 1)
    log(pipe, schedule, {"action": "pause", **state.as_dict()})
    pipe.execute()
    return state


def resume(client: redis.Redis, schedule: str, who: str, now: datetime) -> bool:
    """Resume the schedule; whether it was paused. Only a resume that ended a pause is logged."""
    ended = bool(client.delete(keys.paused(schedule)))
    if ended:
        pipe = client.pipeline()
        log(pipe, schedule, {"action": "resume", "who": who, "when": now.isoformat()})
        pipe.execute()
    return ended


def paused(client: redis.Redis, schedule: str, now: datetime) -> Pause | None:
    """The schedule's pause, while it lasts."""
    state = current(client.get(keys.paused(schedule)), now)
    return None if state is None else Pause(**state)


def current(raw: bytes | str | None, now: datetime) -> dict[str, Any] | None:
    """A pause key's value, while the pause lasts (its key expires within the second after)."""
    if raw is None:
        return None
    state: dict[str, Any] = orjson.loads(raw)
    until = state.get("until")
    return None if until is not None and datetime.fromisoformat(until) <= now else state


def log_action(client: redis.Redis, schedule: str, entry: dict[str, Any]) -> None:
    """Keep another action (a run asked for from Slack, …) in the schedule's log."""
    pipe = client.pipeline()
    log(pipe, schedule, entry)
    pipe.execute()


def log(pipe: Any, schedule: str, entry: dict[str, Any]) -> None:
    """Keep an action in the schedule's log, newest first, capped."""
    pipe.lpush(keys.actions(schedule), orjson.dumps(entry))
    pipe.ltrim(keys.actions(schedule), 0, keys.ACTIONS_LENGTH - 1)


def actions(client: redis.Redis, schedule: str) -> list[dict[str, Any]]:
    """The schedule's actions, newest first."""
    return [orjson.loads(raw) for raw in client.lrange(keys.actions(schedule), 0, -1)]


def described(state: dict[str, Any]) -> str:
    """A pause in words, for the status table and pages: who, since when, until when, why."""
    until = f" until {state['until']}" if state.get("until") else " until resumed"
    why = f" ({state['reason']})" if state.get("reason") else ""
    return f"paused by {state['who']} at {state['when']}{until}{why}"
