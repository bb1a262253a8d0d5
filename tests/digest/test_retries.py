"""A run's waits: rate limits wait what Slack asked and are never counted; every other kind of
failure backs off on its own count, and gives up after its tenth."""

from __future__ import annotations

import pytest
import redis

from jobs.digest import retries
from jobs.digest.ledger import Ledger
from jobs.errors import MailDeferred, RateLimited, RetryableError


def test_a_rate_limit_waits_what_slack_asked_however_often() -> None:
    for _ in range(50):
        wait = retries.wait(RateLimited("conversations.history", 60), failures=0)
        assert wait is not None and 60 <= wait <= 61


def test_one_mail_failure_after_many_outages_waits_as_a_first_failure(
    redis_client: redis.Redis,
) -> None:
    ledger = Ledger(redis_client, "backoff@2026-12-07T09:00:00+00:00")
    redis_client.delete(ledger.key)
    for _ in range(9):
        ledger.count_failure(retries.kind(RetryableError("conversations.history: HTTP 503")))
    mail = MailDeferred("ana@example.com: 451 try later")
    failures = ledger.count_failure(retries.kind(mail))
    assert failures == 1
    waits = [retries.wait(mail, failures) for _ in range(50)]
    assert all(wait is not None and 1.0 <= wait <= 2.0 for wait in waits)
    outage = ledger.count_failure("outage")
    assert outage == 10
    assert retries.wait(RetryableError("HTTP 503"), outage) is None  # the tenth gives up


def test_backoff_grows_and_is_capped() -> None:
    assert max(retries.backoff(2) for _ in range(200)) <= 8
    assert max(retries.backoff(30) for _ in range(200)) <= retries.MAX_BACKOFF


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (RateLimited("chat.postMessage", 1), "rate limit"),
        (MailDeferred("451"), "mail"),
        (RetryableError("HTTP 502"), "outage"),
        (redis.ConnectionError("Connection refused"), "redis"),
    ],
)
def test_each_failure_has_its_kind(error: Exception, kind: str) -> None:
    assert retries.kind(error) == kind
