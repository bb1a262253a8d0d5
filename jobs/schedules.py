"""`schedules.yaml`: what to digest, when, and where to deliver it; and the window of a slot."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from croniter import croniter

from jobs.digest.model import SECTIONS, Window

NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
DURATION = re.compile(r"(\d+)([smhd])")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
KEYS = {
    "name",
    "cron",
    "timezone",
    "channels",
    "window",
    "deliver",
    "sections",
    "skip_if_quiet",
    "enabled",
    "jitter",
    "catchup",
    "timeout",
}


class ScheduleError(ValueError):
    """The schedules file cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Schedule:
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
    zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "zone", ZoneInfo(self.timezone))

    def latest_slot(self, moment: datetime) -> datetime:
        """The newest cron instant at or before `moment`, in the schedule's zone."""
        # croniter's get_prev is strictly before its start: a microsecond later includes `moment`.
        return self.previous_slot(moment + timedelta(microseconds=1))

    def next_slot(self, after: datetime) -> datetime:
        """The first slot strictly after `after`, in the schedule's zone."""
        found: datetime = croniter(self.cron, after.astimezone(self.zone)).get_next(datetime)
        return found

    def next_slots(self, after: datetime, count: int) -> list[datetime]:
        """The `count` slots strictly after `after`."""
        slots = []
        for _ in range(count):
            after = self.next_slot(after)
            slots.append(after)
        return slots

    @property
    def jitter_offset(self) -> timedelta:
        """A fixed delay in [0, jitter) derived from the name, the same in every process."""
        if not self.jitter:
            return timedelta(0)
        digest = int.from_bytes(hashlib.sha256(self.name.encode()).digest()[:8], "big")
        micros = self.jitter // timedelta(microseconds=1)
        return timedelta(microseconds=digest % micros)

    def previous_slot(self, slot: datetime) -> datetime:
        """The cron instant before `slot`."""
        found: datetime = croniter(self.cron, slot.astimezone(self.zone)).get_prev(datetime)
        return found

    def window_for(self, slot: datetime) -> Window:
        """The window a run ending at `slot` covers: the configured length, or one cron period.

        For a cron instant that is `[previous slot, slot)`; for an ad-hoc (manual) slot it has
        the same length as the period that contains it.
        """
        end = slot.astimezone(self.zone)
        if self.window is not None:
            return Window(end - self.window, end, self.timezone)
        latest = self.latest_slot(end)
        period = latest - self.previous_slot(latest)
        return Window(end - period, end, self.timezone)


def duration(value: Any, where: str) -> timedelta:
    if not isinstance(value, str) or not DURATION.fullmatch(value.strip()):
        raise ScheduleError(f"{where}: {value!r} is not a duration like 30s, 15m, 24h or 7d")
    number, unit = DURATION.fullmatch(value.strip()).groups()  # type: ignore[union-attr]
    return timedelta(**{UNITS[unit]: int(number)})


def strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ScheduleError(f"{where}: expected a list of strings")
    return tuple(value)


def boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ScheduleError(f"{where}: expected true or false, not {value!r}")
    return value


def parse_schedule(entry: Any, defaults: dict[str, Any], where: str) -> Schedule:
    if not isinstance(entry, dict):
        raise ScheduleError(f"{where}: a schedule must be a mapping")
    merged = {**defaults, **entry}
    unknown = sorted(set(merged) - KEYS)
    if unknown:
        raise ScheduleError(f"{where}: unknown key {unknown[0]!r}")
    name = merged.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ScheduleError(f"{where}.name: {name!r} must match [a-z0-9][a-z0-9-]*")
    where = f"{where} ({name})"
    cron = merged.get("cron")
    if not isinstance(cron, str) or not croniter.is_valid(cron):
        raise ScheduleError(f"{where}.cron: {cron!r} is not a valid cron expression")
    zone = merged.get("timezone", "UTC")
    try:
        ZoneInfo(str(zone))
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"{where}.timezone: {zone!r} is not an IANA time zone") from None
    deliver = merged.get("deliver") or {}
    if not isinstance(deliver, dict) or set(deliver) - {"slack", "email"}:
        raise ScheduleError(f"{where}.deliver: expected a mapping with slack and/or email")
    sections = strings(merged.get("sections", list(SECTIONS)), f"{where}.sections")
    bad = [s for s in sections if s not in SECTIONS]
    if bad:
        raise ScheduleError(f"{where}.sections: {bad[0]!r} is not one of {', '.join(SECTIONS)}")
    optional = {
        key: duration(merged[key], f"{where}.{key}")
        for key in ("window", "jitter", "catchup", "timeout")
        if key in merged
    }
    return Schedule(
        name=name,
        cron=cron,
        timezone=str(zone),
        channels=strings(merged.get("channels"), f"{where}.channels"),
        slack=strings(deliver.get("slack", []), f"{where}.deliver.slack"),
        email=strings(deliver.get("email", []), f"{where}.deliver.email"),
        sections=sections,
        skip_if_quiet=boolean(merged.get("skip_if_quiet", True), f"{where}.skip_if_quiet"),
        enabled=boolean(merged.get("enabled", True), f"{where}.enabled"),
        **optional,
    )


def load(path: Path) -> dict[str, Schedule]:
    """Every schedule of the file by name; raises `ScheduleError` naming the file and field."""
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as error:
        raise ScheduleError(f"{path}: cannot read: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ScheduleError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(document, dict) or document.get("version") != 1:
        raise ScheduleError(f"{path}: version: expected `version: 1` at the top")
    defaults = document.get("defaults") or {}
    entries = document.get("schedules")
    if not isinstance(entries, list):
        raise ScheduleError(f"{path}: schedules: expected a list of schedules")
    schedules: dict[str, Schedule] = {}
    for index, entry in enumerate(entries):
        schedule = parse_schedule(entry, defaults, f"{path}: schedules[{index}]")
        if schedule.name in schedules:
            raise ScheduleError(f"{path}: schedules[{index}].name: {schedule.name!r} is repeated")
        schedules[schedule.name] = schedule
    return schedules


def parse_slot(value: str, schedule: Schedule) -> datetime:
    """An ISO-8601 instant with an offset, in the schedule's zone."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ScheduleError(f"slot {value!r} is not an ISO-8601 date and time") from None
    if moment.tzinfo is None:
        raise ScheduleError(f"slot {value!r} has no UTC offset")
    return moment.astimezone(schedule.zone)
