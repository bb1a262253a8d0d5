"""How a 429's `Retry-After` becomes a wait: Slack's number, a default, or a cap."""

from __future__ import annotations

import logging

import pytest

from jobs.slack.api import DEFAULT_RETRY_AFTER, MAX_RETRY_AFTER, rate_limited


@pytest.mark.parametrize("header", [None, "", "soon", "nan", "inf", "-3"])
def test_a_missing_or_unusable_retry_after_waits_the_default(header: str | None) -> None:
    limited = rate_limited("conversations.history", header)
    assert limited.retry_after == DEFAULT_RETRY_AFTER
    assert limited.asked is None


@pytest.mark.parametrize(("header", "wait"), [("0", 0.0), ("1", 1.0), ("2.5", 2.5), ("300", 300)])
def test_a_retry_after_up_to_the_cap_is_waited_as_asked(header: str, wait: float) -> None:
    limited = rate_limited("conversations.history", header)
    assert limited.retry_after == wait == limited.asked


def test_a_huge_retry_after_is_capped_logged_and_kept(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="jobs.slack.api"):
        limited = rate_limited("conversations.replies", "86400")
    assert limited.retry_after == MAX_RETRY_AFTER
    assert limited.asked == 86400
    assert "86400s before conversations.replies" in caplog.text
