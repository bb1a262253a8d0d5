"""Activity over a window: its days in the schedule's zone, and a sparkline of them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from jobs.digest.model import Window

BARS = "▁▂▃▄▅▆▇█"
# A longer window is shown a week a bar, and one of years as many days a bar as keep this many
# bars, so the line stays one short line.
MAX_BARS = 31


def days(window: Window) -> list[tuple[str, float]]:
    """Each local day the window touches: its ISO date and when it starts (epoch seconds),
    the first clipped to the window's start."""
    zone = ZoneInfo(window.timezone)
    start = window.start.astimezone(zone)
    found: list[tuple[str, float]] = []
    day = start.date()
    while True:
        midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
        begins = max(midnight, start)
        if begins >= window.end:
            break
        found.append((day.isoformat(), begins.timestamp()))
        day += timedelta(days=1)
    return found or [(start.date().isoformat(), start.timestamp())]


def buckets(counts: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """The days as bars: one a day, or past `MAX_BARS` one a week (labelled by its first day),
    or past `MAX_BARS` weeks `ceil(days / MAX_BARS)` days a bar."""
    if len(counts) <= MAX_BARS:
        return list(counts)
    size = max(7, -(-len(counts) // MAX_BARS))
    return [
        (counts[i][0], sum(count for _, count in counts[i : i + size]))
        for i in range(0, len(counts), size)
    ]


def sparkline(values: Sequence[int]) -> str:
    """One block character a value, the largest full; a day without messages is the lowest."""
    top = max(values, default=0)
    if top <= 0:
        return BARS[0] * len(values)
    return "".join(BARS[0] if v <= 0 else BARS[max(1, round(v * 7 / top))] for v in values)
