"""Redis clients built from the settings, for workers (sync) and the web process (async)."""

from __future__ import annotations

from functools import cache

import redis
import redis.asyncio

from jobs.config import Settings, get_settings

# Fail fast when Redis is gone: the webhook must answer 503 well within Slack's 3 s.
TIMEOUT = 2.0


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
