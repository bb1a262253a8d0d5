"""When a run that met a passing failure tries again, and when it stops: a rate limit waits
what Slack asked and is never counted; each other kind of failure backs off on its own count,
so ten 429s do not stretch the wait after one SMTP 451."""

from __future__ import annotations

import random

import redis

from jobs.errors import RateLimited, RetryableError

# Tries per kind of real failure (Slack outage, mail, Redis) before the run is recorded failed;
# with the backoff below, about 20 minutes of one kind failing.
MAX_FAILURES = 10
MAX_BACKOFF = 300.0
REDIS = "redis"


def kind(error: Exception) -> str:
    """The failure's kind, for its own backoff count."""
    if isinstance(error, RetryableError):
        return error.kind
    if isinstance(error, redis.RedisError | OSError):
        return REDIS
    raise TypeError(f"{type(error).__name__} is not a failure that passes")


def backoff(failures: int) -> float:
    """Seconds before try `failures + 1`: exponential, capped, with full jitter so that many
    runs do not retry in step."""
    return random.uniform(1.0, min(MAX_BACKOFF, 2.0 ** (failures + 1)))


def wait(error: Exception, failures: int) -> float | None:
    """Seconds to wait before trying again, or None to give up; `failures` counts this
    error's kind, this one included (rate limits are not counted)."""
    if isinstance(error, RateLimited):
        return error.retry_after + random.uniform(0, 1)
    if failures >= MAX_FAILURES:
        return None
    return backoff(failures - 1)
