"""A schedule and its slots: the cron instants it runs at, in its zone, and the window of each.

A slot is a wall-clock time the cron names in the schedule's zone, run at one instant: a time that
a spring-forward gap skips runs at the first instant after the gap, a time that a fall-back repeats
runs at its first occurrence only, and wall-clock slots that land on the same instant are one slot.
"""

from __future__ import annotations

import copy
import hashlib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from jobs.digest.model import SECTIONS, Window
from jobs.errors import ScheduleError

DURATION = re.compile(r"(\d{1,9})([smhd])")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
TICK = timedelta(microseconds=1)
# The workers' hard limit for any task; a schedule's `timeout` is at most this.
MAX_TIMEOUT = timedelta(hours=1)
# The instants a person may name: past them croniter overflows `datetime`, and none is a slot
# anyone means.
EARLIEST, LATEST = datetime(2000, 1, 1, tzinfo=UTC), datetime(2101, 1, 1, tzinfo=UTC)
YEARS = "slots are in the years 2000 to 2100"


@dataclass(frozen=True)
class Schedule:
    """One digest: which channels, on which cron in which zone, delivered where."""

    name: str
    cron: str
    channels: tuple[str, ...]
    timezone: str = "UTC"
    window: timedelta | None = None
    slack: tuple[str, ...] = ()
    email: tuple[str, ...] = ()
    sections: tuple[str, ...] = SECTIONS
    skip_if_quiet: bool = True
    enabled: bool = True
    jitter: timedelta = timedelta(0)
    catchup: timedelta = timedelta(hours=1)
    timeout: timedelta = timedelta(minutes=15)
    title: str = ""  # what heads the post, the mail and the Home tab; the name when empty
    owners: tuple[str, ...] = ()  # Slack user IDs who may run, pause and resume it
    summarizer: str = "extractive"
    zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "zone", ZoneInfo(self.timezone))
        if not self.title:
            object.__setattr__(self, "title", self.name)

    def latest_slot(self, moment: datetime) -> datetime:
        """The newest slot at or before the aware instant `moment`, in the schedule's zone."""
        local = self._local(moment)
        repeat_end = _repeat_end(local, self.zone)
        # Past a fall-back, every wall time before the repeat ends ran at its first occurrence.
        wall = local.replace(tzinfo=None) + TICK if repeat_end is None else repeat_end
        return self._instant(step(self.cron, wall, forward=False))

    def previous_slot(self, slot: datetime) -> datetime:
        """The newest slot strictly before `slot`."""
        return self.latest_slot(slot.astimezone(UTC) - TICK)

    def is_slot(self, moment: datetime) -> bool:
        """Whether the instant `moment` is one of the cron's slots (not an ad-hoc moment)."""
        # In UTC: a same-zone comparison ignores `fold`, so a repeated hour would look equal.
        return self.latest_slot(moment).astimezone(UTC) == moment.astimezone(UTC)

    def next_slot(self, after: datetime) -> datetime:
        """The first slot strictly after the aware instant `after`, in the schedule's zone."""
        local = self._local(after)
        repeat_end = _repeat_end(local, self.zone)
        wall = local.replace(tzinfo=None) if repeat_end is None else repeat_end - TICK
        return self._instant(step(self.cron, wall, forward=True))

    def next_slots(self, after: datetime, count: int) -> list[datetime]:
        """The `count` slots strictly after `after`."""
        slots = []
        for _ in range(count):
            after = self.next_slot(after)
            slots.append(after)
        return slots

    def window_for(self, slot: datetime) -> Window:
        """The window a run ending at `slot` covers, in real (elapsed) time.

        A cron slot covers `[previous slot, slot)`, so consecutive windows tile time; a set
        `window` reaches that far back; an ad-hoc (manual) slot covers as long as the cron
        period that contains it.
        """
        end = slot.astimezone(UTC)
        if self.window is not None:
            start = end - self.window
        else:
            # In UTC: an aware datetime never equals one in another zone when its time is
            # repeated, and subtracting two in the same zone takes their wall-clock difference.
            latest = self.latest_slot(end).astimezone(UTC)
            if latest == end:
                start = self.previous_slot(latest).astimezone(UTC)
            else:
                start = end - (self.next_slot(latest).astimezone(UTC) - latest)
        return Window(start.astimezone(self.zone), end.astimezone(self.zone), self.timezone)

    @property
    def jitter_offset(self) -> timedelta:
        """A fixed delay in [0, jitter) derived from the name, the same in every process."""
        if not self.jitter:
            return timedelta(0)
        digest = int.from_bytes(hashlib.sha256(self.name.encode()).digest()[:8], "big")
        micros = self.jitter // timedelta(microseconds=1)
        return timedelta(microseconds=digest % micros)

    def _local(self, moment: datetime) -> datetime:
        """`moment` read in the zone; through UTC, since `astimezone` keeps a same-zone datetime
        as it is, even a wall time that does not exist."""
        return moment.astimezone(UTC).astimezone(self.zone)

    def _instant(self, wall: datetime) -> datetime:
        """When the wall-clock slot `wall` runs: the first of a repeated time, the end of a gap."""
        first = wall.replace(tzinfo=self.zone)  # fold=0: the earlier reading of a repeated time
        local = first.astimezone(UTC).astimezone(self.zone)
        if local.replace(tzinfo=None) == wall:
            return local
        # In a gap, fold=0 reads `wall` with the offset from before it and fold=1 with the one
        # after, which puts the jump between the two readings.
        later = wall.replace(tzinfo=self.zone, fold=1).astimezone(UTC)
        return _transition(self.zone, later, first.astimezone(UTC))


def read_alongside(
    schedule: Schedule, schedules: Iterable[Schedule], slot: datetime
) -> frozenset[str]:
    """The channels (IDs, or names without '#') other enabled schedules read over a window that
    ends at `slot` too: the pages of those a run keeps for the others of its burst."""
    return frozenset(
        ref.removeprefix("#")
        for other in schedules
        if other.name != schedule.name and other.enabled and other.is_slot(slot)
        for ref in other.channels
    )


@lru_cache(maxsize=65536)
def _cron(expression: str) -> croniter:
    """A parsed cron over naive (wall-clock) times; parsing costs more than one step."""
    return croniter(expression, datetime(2000, 1, 1))


def step(expression: str, wall: datetime, *, forward: bool) -> datetime:
    """The cron's wall-clock time strictly after (or before) the naive `wall`."""
    cron = copy.copy(_cron(expression))  # a croniter keeps its position: one copy per use
    try:
        found: datetime = (cron.get_next if forward else cron.get_prev)(datetime, start_time=wall)
    except (OverflowError, ValueError):  # past year 9999 or 1, or no match in croniter's search
        way = "after" if forward else "before"
        raise ScheduleError(f"{expression!r} has no slot {way} {wall.date().isoformat()}") from None
    return found


def _repeat_end(local: datetime, zone: ZoneInfo) -> datetime | None:
    """For an instant in the second pass of a fall-back, the (naive) wall time the repeat ends."""
    if local.fold == 0:
        return None
    before, after = local.replace(fold=0).utcoffset(), local.utcoffset()
    if before is None or after is None or before == after:
        return None
    utc = local.astimezone(UTC)
    change = _transition(zone, utc - (before - after), utc)
    return (change.astimezone(UTC) + before).replace(tzinfo=None)


def _transition(zone: ZoneInfo, before: datetime, after: datetime) -> datetime:
    """The first instant in (before, after] with the offset `after` has: where the clocks jumped."""
    offset = after.astimezone(zone).utcoffset()
    low, high = math.floor(before.timestamp()), math.floor(after.timestamp())
    while high - low > 1:  # tzdata changes offsets on whole seconds
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == offset:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, zone)


def parse_slot(value: str, schedule: Schedule, what: str = "slot") -> datetime:
    """An ISO-8601 instant with an offset, in the schedule's zone."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ScheduleError(f"{what} {value!r} is not an ISO-8601 date and time") from None
    if moment.tzinfo is None:
        raise ScheduleError(f"{what} {value!r} has no UTC offset")
    if not EARLIEST <= moment < LATEST:
        raise ScheduleError(f"{what} {value!r} is out of range: {YEARS}")
    return moment.astimezone(schedule.zone)


def instant(value: object) -> datetime | None:
    """An ISO-8601 time with offset read back from Redis, or None; beat and the ledger may spell
    one instant differently, so compare what this returns, not the text."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def duration(value: Any, where: str) -> timedelta:
    """`30s`, `15m`, `24h` or `7d` as a timedelta; raises `ScheduleError` naming `where`."""
    found = parse_duration(value) if isinstance(value, str) else None
    if found is None:
        raise ScheduleError(f"{where}: {value!r} is not a duration like 30s, 15m, 24h or 7d")
    return found


def parse_duration(text: str) -> timedelta | None:
    """`30s`, `15m`, `24h` or `7d` as a timedelta; None for anything else."""
    found = DURATION.fullmatch(text.strip())
    if found is None:
        return None
    number, unit = found.groups()
    return timedelta(**{UNITS[unit]: int(number)})


def format_duration(value: timedelta) -> str:
    """A whole number of seconds in the largest unit that divides it: `7d`, `90m`, `0s`."""
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
