"""Reading history back from the window's end: where the window starts in a page."""

from __future__ import annotations

from datetime import UTC, datetime

from jobs.digest.collect import Collector, ts_key
from jobs.digest.model import Window


def collector(oldest: str) -> Collector:
    start = datetime.fromtimestamp(float(oldest), UTC)
    window = Window(start, datetime(2030, 1, 1, tzinfo=UTC))
    return Collector(None, window, None, lambda state: None, lambda count: None)  # type: ignore[arg-type]


def test_ts_order_holds_across_digit_counts() -> None:
    assert ts_key("999999999.999999") < ts_key("1000000000.000000")
    assert ts_key("1700000000.5") == ts_key("1700000000.500000")
    assert ts_key("1700000000.000100") < ts_key("1700000000.1")
    assert ts_key("1700000000") == ts_key("1700000000.000000")


def test_a_page_wholly_inside_the_window_is_read_on() -> None:
    page = [{"ts": "1700000300.000000"}, {"ts": "1700000200.000000"}]
    assert collector("1700000100").in_window(page) == (page, False)


def test_the_page_the_window_starts_in_ends_the_read() -> None:
    page = [{"ts": "1700000300.000000"}, {"ts": "1700000100.000000"}, {"ts": "1700000050.1"}]
    # The window is half-open: a message at its first instant is in it, one before is not.
    assert collector("1700000100").in_window(page) == (page[:2], True)
    assert collector("1700000400").in_window(page) == ([], True)
    assert collector("1700000100").in_window([]) == ([], False)
