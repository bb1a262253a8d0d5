"""Slot maths: each wall-clock slot once across DST in any zone, cron forms, `digests next`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from freezegun import freeze_time

from jobs.cli import main
from jobs.config import get_settings
from jobs.errors import ScheduleError
from jobs.scheduling.slots import Schedule, format_duration, parse_slot, read_alongside


def schedule(cron: str, timezone: str = "UTC") -> Schedule:
    return Schedule(name="s", cron=cron, channels=("#eng",), timezone=timezone)


def slots_on(cron: str, timezone: str, day: str) -> list[str]:
    """The slots whose wall-clock date is `day`, as their identities (ISO with offset)."""
    zone = ZoneInfo(timezone)
    start = datetime.fromisoformat(day).replace(tzinfo=zone)
    found = schedule(cron, timezone).next_slots(start - timedelta(days=1), 100)
    return [slot.isoformat() for slot in found if slot.date() == start.date()]


def test_a_daily_time_in_the_spring_forward_gap_runs_when_the_gap_ends() -> None:
    # 2026-03-08 in New York: 02:00 EST jumps to 03:00 EDT.
    assert slots_on("30 2 * * *", "America/New_York", "2026-03-08") == ["2026-03-08T03:00:00-04:00"]
    assert slots_on("30 2 * * *", "America/New_York", "2026-03-09") == ["2026-03-09T02:30:00-04:00"]


def test_an_hourly_cron_on_a_spring_forward_day_runs_the_skipped_hour_once_at_03_00() -> None:
    # 02:00 does not exist and runs at 03:00, which is also the 03:00 slot: one instant, one run.
    assert slots_on("0 * * * *", "America/New_York", "2026-03-08")[:4] == [
        "2026-03-08T00:00:00-05:00",
        "2026-03-08T01:00:00-05:00",
        "2026-03-08T03:00:00-04:00",
        "2026-03-08T04:00:00-04:00",
    ]


def test_a_daily_time_in_the_repeated_hour_runs_at_its_first_occurrence_only() -> None:
    # 2026-11-01 in New York: 02:00 EDT falls back to 01:00 EST; 01:30 happens twice.
    assert slots_on("30 1 * * *", "America/New_York", "2026-11-01") == ["2026-11-01T01:30:00-04:00"]


def test_an_hourly_cron_on_a_fall_back_day_neither_skips_nor_doubles() -> None:
    assert slots_on("0 * * * *", "America/New_York", "2026-11-01")[:4] == [
        "2026-11-01T00:00:00-04:00",
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T02:00:00-05:00",
        "2026-11-01T03:00:00-05:00",
    ]
    assert slots_on("*/30 * * * *", "America/New_York", "2026-11-01")[2:5] == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:30:00-04:00",
        "2026-11-01T02:00:00-05:00",
    ]


@pytest.mark.parametrize(
    ("timezone", "day", "cron", "expected"),
    [
        # Berlin: 02:00 -> 03:00 on 29 March, 03:00 -> 02:00 on 25 October.
        ("Europe/Berlin", "2026-03-29", "30 2 * * *", ["2026-03-29T03:00:00+02:00"]),
        ("Europe/Berlin", "2026-10-25", "30 2 * * *", ["2026-10-25T02:30:00+02:00"]),
        # Lord Howe shifts by 30 minutes: 02:00 -> 02:30 in October, 02:00 -> 01:30 in April.
        ("Australia/Lord_Howe", "2026-10-04", "15 2 * * *", ["2026-10-04T02:30:00+11:00"]),
        ("Australia/Lord_Howe", "2026-04-05", "45 1 * * *", ["2026-04-05T01:45:00+11:00"]),
        # Southern hemisphere: Sydney springs forward in October and falls back in April.
        ("Australia/Sydney", "2026-10-04", "30 2 * * *", ["2026-10-04T03:00:00+11:00"]),
        ("Australia/Sydney", "2026-04-05", "30 2 * * *", ["2026-04-05T02:30:00+11:00"]),
        # Santiago changes at midnight: 24:00 -> 23:00 on 4 April, 00:00 -> 01:00 on 6 September.
        ("America/Santiago", "2026-04-04", "30 23 * * *", ["2026-04-04T23:30:00-03:00"]),
        ("America/Santiago", "2026-09-06", "30 0 * * *", ["2026-09-06T01:00:00-03:00"]),
    ],
)
def test_dst_in_other_zones(timezone: str, day: str, cron: str, expected: list[str]) -> None:
    assert slots_on(cron, timezone, day) == expected


def test_a_half_hour_shift_folds_the_skipped_quarters_into_one_slot() -> None:
    after = datetime(2026, 10, 4, 1, 30, tzinfo=ZoneInfo("Australia/Lord_Howe"))
    found = schedule("*/15 * * * *", "Australia/Lord_Howe").next_slots(after, 3)
    assert [slot.isoformat() for slot in found] == [
        "2026-10-04T01:45:00+10:30",
        "2026-10-04T02:30:00+11:00",  # 02:00, 02:15 and 02:30: one instant
        "2026-10-04T02:45:00+11:00",
    ]


def test_seconds_are_the_sixth_field_and_run_once_in_a_repeated_hour() -> None:
    assert slots_on("30 1 * * * 15", "America/New_York", "2026-11-01") == [
        "2026-11-01T01:30:15-04:00"
    ]


def test_an_instant_in_the_second_pass_of_a_repeated_hour_belongs_to_the_first_passs_slot() -> None:
    daily = schedule("50 1 * * *", "America/New_York")
    second_pass = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 EST, after 01:50 EDT
    latest = daily.latest_slot(second_pass)
    assert latest.isoformat() == "2026-11-01T01:50:00-04:00"
    assert latest.fold == 0
    assert daily.next_slot(second_pass).isoformat() == "2026-11-02T01:50:00-05:00"


@pytest.mark.parametrize(
    ("cron", "after", "expected"),
    [
        ("0 9 31 * *", "2026-04-01T00:00:00+00:00", ["2026-05-31T09:00:00+00:00"]),
        (
            "0 9 L * *",
            "2028-01-31T12:00:00+00:00",
            ["2028-02-29T09:00:00+00:00", "2028-03-31T09:00:00+00:00"],
        ),
        (
            "0 9 29 2 *",
            "2026-01-01T00:00:00+00:00",
            ["2028-02-29T09:00:00+00:00", "2032-02-29T09:00:00+00:00"],
        ),
        (
            "0 9 * * 1#2",
            "2026-11-01T00:00:00+00:00",
            ["2026-11-09T09:00:00+00:00", "2026-12-14T09:00:00+00:00"],
        ),
        (
            "0 9 1 1 *",
            "2026-11-24T00:00:00+00:00",
            ["2027-01-01T09:00:00+00:00", "2028-01-01T09:00:00+00:00"],
        ),
        (
            "0 9 * * * 30",
            "2026-11-24T09:00:30+00:00",
            ["2026-11-25T09:00:30+00:00"],
        ),
        (
            # Day of month OR day of week: the 1st (a Wednesday) and every Monday.
            "0 9 1 * MON",
            "2026-06-30T00:00:00+00:00",
            ["2026-07-01T09:00:00+00:00", "2026-07-06T09:00:00+00:00", "2026-07-13T09:00:00+00:00"],
        ),
    ],
)
def test_cron_forms(cron: str, after: str, expected: list[str]) -> None:
    found = schedule(cron).next_slots(datetime.fromisoformat(after), len(expected))
    assert [slot.isoformat() for slot in found] == expected


def test_a_slot_is_its_own_latest_slot_and_the_walk_back_mirrors_the_walk_forward() -> None:
    monthly = schedule("0 9 L * *", "Europe/Berlin")
    slots = monthly.next_slots(datetime(2026, 1, 1, tzinfo=UTC), 14)
    for earlier, later in pairwise(slots):
        assert monthly.latest_slot(later) == later
        assert monthly.previous_slot(later) == earlier
        assert monthly.latest_slot(later - timedelta(seconds=1)) == earlier


def reference_slots(cron: str, zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """The slots in [start, end] by brute force: each wall time the cron names runs at the first
    instant (on a one-minute grid) whose wall-clock reading has reached it."""
    walls = croniter(cron, start.astimezone(zone).replace(tzinfo=None) - timedelta(hours=3))
    moment, found = start - timedelta(hours=3), []
    while moment <= end:
        wall = walls.get_next(datetime)
        while moment.astimezone(zone).replace(tzinfo=None) < wall:
            moment += timedelta(minutes=1)
        found.append(moment)
    return sorted({slot for slot in found if start <= slot <= end})


@pytest.mark.parametrize(
    ("timezone", "day"),
    [
        ("America/New_York", "2026-03-08"),
        ("America/New_York", "2026-11-01"),
        ("Europe/Berlin", "2026-10-25"),
        ("Australia/Lord_Howe", "2026-10-04"),
        ("Australia/Lord_Howe", "2026-04-05"),
        ("America/Santiago", "2026-04-05"),
        ("America/Santiago", "2026-09-06"),
    ],
)
@pytest.mark.parametrize("cron", ["0 * * * *", "*/20 * * * *", "30 1 * * *", "15 2 * * *"])
def test_slot_walks_match_brute_force_across_a_dst_change(
    timezone: str, day: str, cron: str
) -> None:
    zone = ZoneInfo(timezone)
    middle = datetime.fromisoformat(day).replace(tzinfo=zone).astimezone(UTC)
    start, end = middle - timedelta(hours=12), middle + timedelta(hours=36)
    expected = reference_slots(cron, zone, start, end)
    walking = schedule(cron, timezone)
    walked, slot = [], walking.next_slot(start - timedelta(seconds=1))
    while slot <= end:
        walked.append(slot)
        slot = walking.next_slot(slot)
    assert [slot.astimezone(UTC) for slot in walked] == expected
    assert all(slot.fold == 0 and slot.tzinfo is zone for slot in walked)
    for earlier, later in pairwise(walked):
        assert walking.previous_slot(later).isoformat() == earlier.isoformat()
        window = walking.window_for(later)
        assert (window.start.isoformat(), window.end.isoformat()) == (
            earlier.isoformat(),
            later.isoformat(),
        )
    moment = expected[0]
    while moment < end:  # every seven minutes, so instants fall between and on slots
        latest = max(slot for slot in expected if slot <= moment)
        assert walking.latest_slot(moment).astimezone(UTC) == latest
        moment += timedelta(minutes=7)


def test_windows_are_elapsed_time_and_a_manual_slot_has_its_periods_length() -> None:
    daily = Schedule(name="d", cron="0 9 * * *", channels=("#a",), timezone="America/New_York")
    after_spring = datetime(2026, 3, 8, 9, tzinfo=ZoneInfo("America/New_York"))
    window = daily.window_for(after_spring)
    # Slot to slot: 09:00 to 09:00, which this day is 23 hours.
    assert window.start.isoformat() == "2026-03-07T09:00:00-05:00"
    assert window.end.astimezone(UTC) - window.start.astimezone(UTC) == timedelta(hours=23)
    # A manual run at 15:00 that day: as long as the period it falls in (9 Mar 09:00 is 24h on).
    manual = daily.window_for(datetime(2026, 3, 8, 19, tzinfo=UTC))
    assert manual.end.astimezone(UTC) - manual.start.astimezone(UTC) == timedelta(hours=24)
    assert manual.start.isoformat() == "2026-03-07T14:00:00-05:00"
    configured = Schedule(
        name="c",
        cron="0 9 * * *",
        channels=("#a",),
        timezone="America/New_York",
        window=timedelta(hours=24),
    )
    assert configured.window_for(after_spring).start.isoformat() == "2026-03-07T08:00:00-05:00"


def test_a_manual_slot_in_the_second_pass_of_a_repeated_hour_is_not_that_hours_slot() -> None:
    hourly = schedule("0 * * * *", "America/New_York")
    second_one = datetime(2026, 11, 1, 6, tzinfo=UTC)  # 01:00 EST, the repeat of 01:00 EDT
    window = hourly.window_for(second_one)
    assert window.end.isoformat() == "2026-11-01T01:00:00-05:00"
    assert window.end.astimezone(UTC) - window.start.astimezone(UTC) == timedelta(hours=2)


def test_parse_slot_names_what_it_read() -> None:
    with pytest.raises(ScheduleError, match="--after 'tomorrow' is not an ISO-8601"):
        parse_slot("tomorrow", schedule("0 9 * * *"), "--after")


@pytest.fixture
def schedules_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "schedules.yaml"
    path.write_text(
        "version: 1\nschedules:\n"
        '  - {name: ny, cron: "30 2 * * *", timezone: America/New_York, channels: ["#eng"],\n'
        '     deliver: {slack: ["#d"]}}\n'
    )
    monkeypatch.setenv("SCHEDULES_FILE", str(path))
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


@freeze_time("2027-03-13T12:00:00Z")
def test_next_prints_local_and_utc_slots_after_now(
    schedules_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["next", "ny", "-n", "2"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "2027-03-14T03:00:00-04:00  2027-03-14T07:00:00Z",
        "2027-03-15T02:30:00-04:00  2027-03-15T06:30:00Z",
    ]


def test_next_after_an_instant_as_json(
    schedules_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["next", "ny", "-n", "1", "--after", "2026-11-01T05:30:00Z", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"local": "2026-11-01T02:30:00-05:00", "utc": "2026-11-01T07:30:00Z"}
    ]


def test_next_of_an_unknown_schedule_names_the_file(
    schedules_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["next", "nope"]) == 1
    assert f"{schedules_file} has no schedule named 'nope'" in capsys.readouterr().err


def test_durations_are_shown_in_the_largest_unit_that_divides_them() -> None:
    shown = [format_duration(timedelta(seconds=n)) for n in (0, 45, 90, 5400, 86400 * 7)]
    assert shown == ["0s", "45s", "90s", "90m", "7d"]


@pytest.mark.parametrize("after", ["9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00+00:00"])
def test_next_after_an_instant_out_of_range_says_so(
    schedules_file: Path, capsys: pytest.CaptureFixture[str], after: str
) -> None:
    assert main(["next", "ny", "--after", after]) == 1
    assert capsys.readouterr().err == (
        f"digests: --after {after!r} is out of range: slots are in the years 2000 to 2100\n"
    )


def test_slots_past_what_a_datetime_holds_are_an_error_not_an_overflow() -> None:
    yearly = Schedule(name="yearly", cron="0 0 1 1 *", channels=("#eng",))
    with pytest.raises(ScheduleError, match="'0 0 1 1 \\*' has no slot after 9999-01-01"):
        yearly.next_slots(datetime(2100, 1, 1, tzinfo=UTC), 8000)
    with pytest.raises(ScheduleError, match="'0 0 1 1 \\*' has no slot before 0001-01-01"):
        yearly.latest_slot(datetime(1, 1, 1, tzinfo=UTC))


def test_a_cron_that_never_fires_is_an_error_not_a_crash() -> None:
    never = Schedule(name="never", cron="0 0 31 2 *", channels=("#eng",))
    moment = datetime(2027, 1, 1, tzinfo=UTC)
    with pytest.raises(ScheduleError, match="'0 0 31 2 \\*' has no slot after 2027-01-01"):
        never.next_slot(moment)
    with pytest.raises(ScheduleError, match="has no slot before 2027-01-01"):
        never.latest_slot(moment)


def test_channels_read_alongside_are_those_of_other_schedules_due_at_the_same_instant() -> None:
    monday_nine = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    mine = Schedule("weekly", "0 9 * * MON", ("#eng", "#support"))
    others = [
        mine,
        Schedule("daily", "0 9 * * *", ("#eng", "C0123ABCD")),
        # 10:00 in Berlin is 09:00 UTC: the same instant.
        Schedule("berlin", "0 10 * * MON", ("#design",), timezone="Europe/Berlin"),
        Schedule("later", "30 9 * * MON", ("#random",)),
        Schedule("off", "0 9 * * MON", ("#leadership",), enabled=False),
    ]
    assert read_alongside(mine, others, monday_nine) == {"eng", "C0123ABCD", "design"}
    # An ad-hoc moment (a manual run) is nobody's slot.
    assert read_alongside(mine, others, monday_nine + timedelta(seconds=7)) == frozenset()
