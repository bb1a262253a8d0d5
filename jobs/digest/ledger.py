"""The ledger of digest runs in Redis: who owns a slot, how far it got, and how it ended.

A run is one schedule at one slot. The first task to claim it owns it; a redelivery or retry of
that task (same task id) resumes it from what the ledger says was already done, so a crash or
a retry never delivers anything twice.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

import orjson
import redis

from jobs import keys
from jobs.connections import text
from jobs.digest.model import Stats

if TYPE_CHECKING:
    from jobs.slack.api import CallCounts

CHECKPOINT = "checkpoint"
RECORD = "record"
FAILURES = "failures:"  # then the kind: how often it failed so far
CALLS = "calls:"  # then the method: Slack calls the run made, over all its attempts
LIMITED = "429:"  # then the method: how many of them Slack refused with 429
CAPPED = "capped:"  # then the method: the longest Retry-After asked past the cap


# What a run's record shows outside: no destinations (addresses) and no figures.
OUTCOME = ("run", "slot", "manual", "by", "status", "reason", "error", "finished")


@dataclass(frozen=True)
class RunRecord:
    """How a run ended, as its ledger, the schedule's history and the task's result keep it."""

    run: str
    schedule: str
    slot: str  # ISO-8601 with offset
    manual: bool
    status: str  # delivered, partial, failed or skipped
    started: float  # epoch seconds
    finished: float
    reason: str | None = None  # why it was skipped
    error: str | None = None
    window: tuple[str, str] | None = None  # ISO-8601 start and end
    totals: dict[str, int] | None = None  # the headline figures
    destinations: dict[str, str] | None = None  # each destination's outcome
    timings: dict[str, float] | None = None  # seconds per stage
    terms: dict[str, dict[str, int]] | None = None  # each channel's term counts, for topics
    summarizer: str | None = None  # how the summary was made, and why the LLM's was not used
    by: str | None = None  # who asked for a manual run
    calls: dict[str, int] | None = None  # Slack calls per method, over all attempts
    rate_limited: dict[str, int] | None = None  # of which Slack answered 429, per method
    capped: dict[str, float] | None = None  # Retry-After asked past the cap, per method
    lateness: float | None = None  # seconds from the slot to the end of the run

    def as_dict(self) -> dict[str, Any]:
        """The record as JSON keeps it; fields without a value are left out."""
        return {name: value for name, value in asdict(self).items() if value is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        known = {f.name for f in fields(cls)}
        values = {name: value for name, value in data.items() if name in known}
        if values.get("window") is not None:
            values["window"] = tuple(values["window"])
        return cls(**values)

    @classmethod
    def from_json(cls, raw: bytes | str) -> RunRecord:
        return cls.from_dict(orjson.loads(raw))

    def outcome(self) -> dict[str, Any]:
        """What the record shows outside (status pages, `/digest schedules`): no addresses and
        no figures."""
        shown = self.as_dict()
        return {name: shown[name] for name in OUTCOME if name in shown}

    @property
    def succeeded(self) -> bool:
        """Delivered, or had nothing to deliver."""
        return self.status in ("delivered", "skipped")


@dataclass(frozen=True)
class Duplicate:
    """Another task owns the run: this one did nothing."""

    run: str
    owner: str

    def as_dict(self) -> dict[str, Any]:
        return {"run": self.run, "status": "duplicate", "owner": self.owner}


@dataclass(frozen=True)
class Claim:
    owner: str  # the task id that owns the run
    ours: bool  # this task claimed it now, or claimed it before (a retry or redelivery)
    started: float  # when the run was first claimed, epoch seconds


class Ledger:
    """One run's entries. Every write is a single Redis command, so a crash loses no more."""

    def __init__(self, client: redis.Redis, run: str) -> None:
        self.client = client
        self.run = run
        self.key = keys.run(run)

    def claim(self, task_id: str) -> Claim:
        """Claim the run for `task_id` with SET NX; say who owns it when someone else does."""
        now = time.time()
        claimed = self.client.set(
            keys.claim(self.run), f"{task_id} {now}", nx=True, ex=keys.RUN_TTL
        )
        if claimed:
            return Claim(task_id, True, now)
        raw = self.client.get(keys.claim(self.run))
        owner, _, started = text(raw or "").partition(" ")
        return Claim(owner, owner == task_id, float(started or now))

    def started(self) -> float | None:
        """When the run was first claimed, epoch seconds; None before."""
        raw = self.client.get(keys.claim(self.run))
        return None if raw is None else float(text(raw).partition(" ")[2])

    def count_failure(self, kind: str) -> int:
        """Count one more failure of this kind; how many the run has met."""
        count = int(self.client.hincrby(self.key, FAILURES + kind, 1))
        self.client.expire(self.key, keys.RUN_TTL)
        return count

    def get(self, field: str) -> str | None:
        value = self.client.hget(self.key, field)
        return None if value is None else text(value)

    def put(self, field: str, value: str) -> None:
        self.client.hset(self.key, field, value)
        self.client.expire(self.key, keys.RUN_TTL)

    def entries(self, prefix: str) -> dict[str, str]:
        """Fields starting with `prefix` (a destination kind), without it."""
        found: dict[bytes | str, bytes | str] = self.client.hgetall(self.key)
        out = {}
        for name, value in found.items():
            field = text(name)
            if field.startswith(prefix):
                out[field[len(prefix) :]] = text(value)
        return out

    def add_calls(self, counts: CallCounts) -> None:
        """Add a try's Slack calls to the run's, and forget them so none counts twice."""
        if not counts.calls:
            return
        with self.client.pipeline(transaction=False) as pipe:
            for method, count in counts.calls.items():
                pipe.hincrby(self.key, CALLS + method, count)
            for method, count in counts.limited.items():
                pipe.hincrby(self.key, LIMITED + method, count)
            for method, asked in counts.capped.items():
                pipe.hset(self.key, CAPPED + method, asked)
            pipe.expire(self.key, keys.RUN_TTL)
            pipe.execute()
        counts.calls.clear()
        counts.limited.clear()
        counts.capped.clear()

    def calls(self) -> tuple[dict[str, int], dict[str, int], dict[str, float]]:
        """The run's Slack calls so far per method: made, refused with 429, and the longest
        `Retry-After` asked past the cap."""
        made = {method: int(n) for method, n in self.entries(CALLS).items()}
        limited = {method: int(n) for method, n in self.entries(LIMITED).items()}
        capped = {method: float(s) for method, s in self.entries(CAPPED).items()}
        return made, limited, capped

    def checkpoint(self) -> dict[str, Any] | None:
        raw = self.get(CHECKPOINT)
        return None if raw is None else dict(orjson.loads(raw))

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        self.put(CHECKPOINT, orjson.dumps(state).decode())

    def record(self) -> RunRecord | None:
        """The run's final record, once it has one."""
        raw = self.get(RECORD)
        return None if raw is None else RunRecord.from_json(raw)

    def finish(self, record: RunRecord) -> None:
        """Keep the final record on the run and at the head of the schedule's history."""
        schedule = record.schedule
        data = orjson.dumps(record.as_dict())
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(self.key, RECORD, data)
            pipe.hdel(self.key, CHECKPOINT)
            pipe.expire(self.key, keys.RUN_TTL)
            pipe.lpush(keys.history(schedule), data)
            pipe.ltrim(keys.history(schedule), 0, keys.HISTORY_LENGTH - 1)
            pipe.execute()


def history(client: redis.Redis, schedule: str, count: int = 20) -> list[RunRecord]:
    """The schedule's latest finished runs, newest first."""
    rows = client.lrange(keys.history(schedule), 0, count - 1)
    return [RunRecord.from_json(row) for row in rows]


def previous_run(client: redis.Redis, schedule: str) -> RunRecord | None:
    """The schedule's last scheduled run that counted anything: what trends compare with."""
    for record in history(client, schedule):
        if record.totals is not None and not record.manual:
            return record
    return None


def totals_of(record: RunRecord | None) -> Stats | None:
    if record is None or record.totals is None:
        return None
    totals = record.totals
    return Stats(**{k: int(v) for k, v in totals.items() if k in Stats.__annotations__})
