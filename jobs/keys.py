"""Names of the Redis keys the service owns: one prefix, one place."""

from __future__ import annotations

PREFIX = "digests:"

# Slack retries an event for about 6 minutes; an hour covers that with room to spare.
EVENT_DEDUPE_TTL = 3600
# How long `GET /tasks/{id}` knows an id: as long as the result backend keeps results.
TASK_RECORD_TTL = 86400


def event(event_id: str) -> str:
    """The dedupe claim of one Slack `event_id`; its value is the task id it became."""
    return f"{PREFIX}event:{event_id}"


def task(task_id: str) -> str:
    """The record that we issued this task id, so unknown ids can answer 404."""
    return f"{PREFIX}task:{task_id}"


def revoked(token_fingerprint: str) -> str:
    """Set when Slack revoked the bot token with this fingerprint; a new token is unaffected."""
    return f"{PREFIX}revoked:{token_fingerprint}"
