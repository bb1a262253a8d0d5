"""Every error the service raises on purpose, sorted by what a caller does about it.

A task retries a `RetryableError` (after `retry_after` when it is `RateLimited`) and records a
`PermanentError` as the run's failure; either message is written for a person to act on.
"""

from __future__ import annotations


class DigestsError(Exception):
    """Something the service knows how to explain; the message says what went wrong."""


class PermanentError(DigestsError):
    """Retrying cannot help; the message says what a person can do about it."""


class RetryableError(DigestsError):
    """It may pass: a Slack outage, a timeout, a dropped connection, an SMTP 4xx. `kind` names
    the failure for its backoff: each kind counts its own tries."""

    kind = "outage"


class RateLimited(RetryableError):
    """Slack answered 429; the work resumes after `retry_after` seconds. Never counted as a
    failure: a run waits out rate limits until its `timeout`."""

    kind = "rate limit"

    def __init__(self, method: str, retry_after: float, asked: float | None = None) -> None:
        super().__init__(f"Slack rate-limited {method}; retry after {retry_after:g}s")
        self.retry_after = retry_after
        self.asked = asked  # what Slack's Retry-After said, when it said a number


class ConfigError(PermanentError):
    """An environment variable holds a value the service cannot use."""


class ScheduleError(PermanentError):
    """The schedules file, or a slot or schedule asked for, cannot be used; the message says
    where (file, line and field) and what would be valid."""


class UnknownSchedule(ScheduleError):
    """The schedules file is valid and has no schedule of that name."""


class TokenRevoked(PermanentError):
    """Slack revoked the bot token or the app was uninstalled; deliveries must not post."""


class MailDeferred(RetryableError):
    """Some recipients' servers answered 4xx; the task retries them, and only them."""

    kind = "mail"


class LLMFailed(PermanentError):
    """The LLM endpoint gave no summary; the digest goes out without one. The message never
    holds the key, the prompt or the answer."""


class ShuttingDown(DigestsError):
    """The worker is shutting down (SIGTERM): the run hands itself back to the queue at once,
    to resume from its checkpoint on another worker."""
