from __future__ import annotations

from datetime import UTC, datetime

from jobs.digest.activity import BARS, buckets, days, sparkline
from jobs.digest.model import Window


def test_the_days_are_the_schedules_local_days() -> None:
    # Mon 09:00 to Mon 09:00 in Berlin: the rest of Monday, six whole days, the next morning.
    window = Window(
        datetime(2026, 11, 16, 8, tzinfo=UTC),
        datetime(2026, 11, 23, 8, tzinfo=UTC),
        "Europe/Berlin",
    )
    found = days(window)
    assert [day for day, _ in found] == [f"2026-11-{d}" for d in range(16, 24)]
    assert found[0][1] == window.start.timestamp()  # the first day starts with the window
    assert found[1][1] == datetime(2026, 11, 16, 23, tzinfo=UTC).timestamp()  # Berlin midnight


def test_a_day_across_a_dst_change_starts_at_local_midnight() -> None:
    window = Window(
        datetime(2026, 10, 24, 22, tzinfo=UTC),
        datetime(2026, 10, 26, 23, tzinfo=UTC),
        "Europe/Berlin",
    )
    starts = dict(days(window))
    assert starts["2026-10-25"] == datetime(2026, 10, 24, 22, tzinfo=UTC).timestamp()
    assert starts["2026-10-26"] == datetime(2026, 10, 25, 23, tzinfo=UTC).timestamp()  # 25 h day


def test_an_hour_long_window_is_one_day() -> None:
    window = Window(datetime(2026, 11, 16, 8, tzinfo=UTC), datetime(2026, 11, 16, 9, tzinfo=UTC))
    assert [day for day, _ in days(window)] == ["2026-11-16"]


def test_the_sparkline_scales_to_the_busiest_day_and_shows_quiet_days_lowest() -> None:
    assert sparkline([0, 1, 4, 8]) == BARS[0] + BARS[1] + BARS[4] + BARS[7]
    assert sparkline([0, 0]) == BARS[0] * 2
    assert sparkline([]) == ""
    assert sparkline([1, 1000]) == BARS[1] + BARS[7]  # a quiet day is never shown as none


def test_a_long_window_is_shown_a_week_a_bar() -> None:
    daily = [(f"d{n:02d}", 1) for n in range(60)]
    weekly = buckets(daily)
    assert len(weekly) == 9
    assert weekly[0] == ("d00", 7) and weekly[-1] == ("d56", 4)
    assert buckets(daily[:31]) == daily[:31]


def test_a_window_of_years_stays_one_short_line() -> None:
    daily = [(f"d{n:04d}", 1) for n in range(3650)]
    bars = buckets(daily)
    assert len(bars) <= 31
    assert sum(count for _, count in bars) == 3650  # every day in exactly one bar
    assert bars[0] == ("d0000", 118) and bars[1][0] == "d0118"
    weeks = buckets(daily[: 31 * 7])
    assert len(weeks) == 31 and weeks[1] == ("d0007", 7)
