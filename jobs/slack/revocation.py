"""Whether Slack revoked our bot token: posting with a revoked token only produces errors."""

from __future__ import annotations

import hashlib
import time

import redis

from jobs import keys
from jobs.connections import text
from jobs.errors import TokenRevoked


def fingerprint(token: str) -> str:
    """A short, irreversible name for a token, so Redis never holds the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def mark_revoked(client: redis.Redis, token: str, reason: str) -> None:
    # No TTL: a revoked token never works again, and a new token has another fingerprint.
    client.hset(
        keys.revoked(fingerprint(token)), mapping={"reason": reason, "at": int(time.time())}
    )


def ensure_not_revoked(client: redis.Redis, token: str) -> None:
    """Raise `TokenRevoked` when this token was revoked; deliveries call it before posting."""
    reason = client.hget(keys.revoked(fingerprint(token)), "reason")
    if reason is not None:
        raise TokenRevoked(
            f"Slack revoked the bot token ({text(reason)}): reinstall the app and set "
            "SLACK_BOT_TOKEN to the new token"
        )
