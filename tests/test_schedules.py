"""schedules.yaml: loading, errors that name the file and field, and each slot's window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from jobs.schedules import Schedule, ScheduleError, load, parse_slot

BERLIN = ZoneInfo("Europe/Berlin")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "schedules.yaml"
    path.write_text(text)
    return path


def test_the_repository_file_loads() -> None:
    schedules = load(Path(__file__).resolve().parent.parent / "schedules.yaml")
    assert schedules["eng-weekly"].timezone == "Europe/Berlin"
    assert schedules["support-daily"].window == timedelta(hours=24)


def test_defaults_apply_and_schedules_override_them(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
version: 1
defaults: {timezone: Asia/Tokyo, skip_if_quiet: false}
schedules:
  - {name: a, cron: "0 9 * * *", channels: ["#eng"], deliver: {slack: ["#d"]}}
  - {name: b, cron: "0 9 * * *", channels: ["C0123ABCD"], timezone: UTC, skip_if_quiet: true,
     sections: [threads], timeout: 5m, deliver: {email: [x@example.com]}}
""",
    )
    a, b = load(path).values()
    assert (a.timezone, a.skip_if_quiet, a.slack) == ("Asia/Tokyo", False, ("#d",))
    assert (b.timezone, b.skip_if_quiet, b.sections) == ("UTC", True, ("threads",))
    assert b.timeout == timedelta(minutes=5) and b.email == ("x@example.com",)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('{name: Bad_Name, cron: "0 9 * * *", channels: [a]}', "schedules[0].name"),
        ('{name: a, cron: "0 25 * * *", channels: [a]}', "schedules[0] (a).cron"),
        ('{name: a, cron: "0 9 * * *", channels: [a], timezone: Mars/Base}', "(a).timezone"),
        ('{name: a, cron: "0 9 * * *", channels: [a], window: 7 days}', "(a).window"),
        ('{name: a, cron: "0 9 * * *", channels: [a], colour: red}', "unknown key 'colour'"),
        ('{name: a, cron: "0 9 * * *", channels: [a], sections: [gossip]}', "(a).sections"),
        ('{name: a, cron: "0 9 * * *"}', "(a).channels"),
    ],
)
def test_errors_name_the_file_and_the_field(tmp_path: Path, entry: str, message: str) -> None:
    path = write(tmp_path, f"version: 1\nschedules:\n  - {entry}\n")
    with pytest.raises(ScheduleError) as raised:
        load(path)
    assert str(path) in str(raised.value)
    assert message in str(raised.value)


def test_repeated_names_are_an_error(tmp_path: Path) -> None:
    entry = '{name: a, cron: "0 9 * * *", channels: [a]}'
    path = write(tmp_path, f"version: 1\nschedules:\n  - {entry}\n  - {entry}\n")
    with pytest.raises(ScheduleError, match=r"schedules\[1\].name: 'a' is repeated"):
        load(path)


def test_a_weekly_window_is_exactly_the_week_before_the_slot() -> None:
    weekly = Schedule(name="w", cron="0 9 * * MON", channels=("#eng",), timezone="Europe/Berlin")
    slot = datetime(2026, 11, 23, 9, tzinfo=BERLIN)
    window = weekly.window_for(slot)
    assert window.start == datetime(2026, 11, 16, 9, tzinfo=BERLIN)
    assert window.end == slot
    # The next slot's window starts where this one ended: no gap, no overlap.
    assert weekly.window_for(slot + timedelta(days=7)).start == window.end


def test_a_window_across_a_dst_change_covers_the_wall_clock_week() -> None:
    weekly = Schedule(name="w", cron="0 9 * * MON", channels=("#eng",), timezone="Europe/Berlin")
    window = weekly.window_for(datetime(2026, 10, 26, 9, tzinfo=BERLIN))
    assert window.start == datetime(2026, 10, 19, 9, tzinfo=BERLIN)
    # 25 October fell back an hour: the week from Monday 09:00 to Monday 09:00 lasts 7d 1h.
    elapsed = window.end.astimezone(UTC) - window.start.astimezone(UTC)
    assert elapsed == timedelta(days=7, hours=1)


def test_a_manual_slot_has_the_length_of_the_period_around_it() -> None:
    daily = Schedule(name="d", cron="30 8 * * *", channels=("#eng",))
    asked = datetime(2026, 11, 24, 15, 12, tzinfo=UTC)
    window = daily.window_for(asked)
    assert (window.start, window.end) == (asked - timedelta(days=1), asked)
    assert daily.latest_slot(asked) == datetime(2026, 11, 24, 8, 30, tzinfo=UTC)


def test_a_configured_window_overrides_the_period() -> None:
    hourly = Schedule(name="h", cron="0 * * * *", channels=("#a",), window=timedelta(days=1))
    slot = datetime(2026, 11, 24, 10, tzinfo=UTC)
    assert hourly.window_for(slot).start == slot - timedelta(days=1)


def test_latest_slot_includes_the_instant_itself() -> None:
    daily = Schedule(name="d", cron="0 9 * * *", channels=("#a",), timezone="Europe/Berlin")
    slot = datetime(2026, 11, 24, 9, tzinfo=BERLIN)
    assert daily.latest_slot(slot) == slot
    assert daily.latest_slot(slot - timedelta(seconds=1)) == slot - timedelta(days=1)


def test_slots_are_read_in_the_schedules_zone() -> None:
    daily = Schedule(name="d", cron="0 9 * * *", channels=("#a",), timezone="Europe/Berlin")
    assert parse_slot("2026-11-24T08:00:00Z", daily) == datetime(2026, 11, 24, 9, tzinfo=BERLIN)
    with pytest.raises(ScheduleError, match="no UTC offset"):
        parse_slot("2026-11-24T08:00:00", daily)
