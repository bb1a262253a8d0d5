"""Redis clients built from the settings, for workers (sync) and the web process (async)."""

from __future__ import annotations

from functools import cache

import redis
import redis.asyncio

from jobs.config import Settings, get_settings, mask_url

# Fail fast when Redis is gone: the webhook must answer 503 well within Slack's 3 s.
TIMEOUT = 2.0
# What a client raises when it cannot reach Redis (a refused connection, a timeout, DNS).
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)


def sync_redis(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(
        settings.redis.url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT
    )


@cache
def shared_redis() -> redis.Redis:
    """The process's client for the environment's Redis: one connection pool per process."""
    return sync_redis(get_settings())


def async_redis(settings: Settings) -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url(
        settings.redis.url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT
    )


def text(value: bytes | str) -> str:
    """A Redis reply as text: our clients do not decode, since task messages stay bytes."""
    return value.decode() if isinstance(value, bytes) else value


def unreachable(url: str, error: BaseException) -> str:
    """A person's reading of a connection failure: which Redis (never its password), why, and
    what to do."""
    return (
        f"cannot reach Redis at {mask_url(url)} ({error}): start it, or set REDIS_URL to the "
        "Redis the service uses"
    )
