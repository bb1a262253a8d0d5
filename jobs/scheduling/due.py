"""What is due when a slot's time has come: the slot to run, and the older ones to record as
skipped. Beat deals with each slot of its heap this way, and `tick` with a schedule's cursor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from jobs import keys
from jobs.scheduling.slots import Schedule


@dataclass(frozen=True)
class Due:
    """What to do when a slot's time has come: which slot to run, which to record as skipped."""

    fire: datetime | None  # the slot to enqueue now, if any
    skipped: tuple[datetime, ...]  # oldest first, at most `keys.SKIPPED_LENGTH`
    newest: datetime  # the newest slot dealt with: the schedule's cursor from now on


def catch_up(schedule: Schedule, first: datetime, now: datetime, grace: timedelta) -> Due:
    """Deal with `first`, the schedule's oldest slot not yet dealt with, whose time has come.

    Within `grace` of its time it runs (a handover or a slow tick, not an outage). Otherwise
    the newest slot due by `now` runs if it is within `catchup` (or `grace`), and the slots
    before it back to `first` are skipped; only the newest `SKIPPED_LENGTH` are listed.
    """
    jitter = schedule.jitter_offset
    if now - (first + jitter) <= grace:
        return Due(first, (), first)
    newest = max(schedule.latest_slot(now - jitter), first)
    fire = newest if now - (newest + jitter) <= max(schedule.catchup, grace) else None
    skipped: list[datetime] = []
    slot = newest if fire is None else schedule.previous_slot(newest)
    while slot >= first and len(skipped) < keys.SKIPPED_LENGTH:
        skipped.append(slot)
        slot = schedule.previous_slot(slot)
    return Due(fire, tuple(reversed(skipped)), newest)


def basis(schedule: Schedule) -> str:
    """What a schedule's cursor was counted in; when it changes, the cursor starts again."""
    return f"{schedule.cron} {schedule.timezone}"
