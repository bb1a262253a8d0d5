"""Error reporting to Sentry, with secrets and Slack message text scrubbed before sending."""

from __future__ import annotations

from typing import Any

import sentry_sdk
from sentry_sdk.crons import MonitorStatus, capture_checkin
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.starlette import StarletteIntegration
from sentry_sdk.types import Event, Hint, MonitorConfig

from jobs.config import Settings
from jobs.redaction import Redactor
from jobs.schedules import Schedule

# A run's status, as Sentry Crons sees it; duplicates (another task owns the slot) send nothing.
OUTCOMES = {
    "delivered": MonitorStatus.OK,
    "skipped": MonitorStatus.OK,
    "partial": MonitorStatus.ERROR,
    "failed": MonitorStatus.ERROR,
}


def scrubber(settings: Settings) -> Any:
    """A `before_send` that drops request bodies and filters secrets from the rest."""
    redactor = Redactor(settings.secrets)

    def before_send(event: Event, hint: Hint) -> Event:
        request = event.get("request")
        if isinstance(request, dict):
            # Bodies carry Slack users' messages and the deprecated verification token.
            request.pop("data", None)
        scrubbed: Event = redactor.data(event)
        return scrubbed

    return before_send


def init_sentry(settings: Settings) -> bool:
    """Start reporting when `SENTRY_DSN` is set; returns whether it did."""
    if not settings.sentry_dsn:
        return False
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.sentry_environment,
        integrations=[StarletteIntegration(), CeleryIntegration()],
        before_send=scrubber(settings),
        max_request_body_size="never",
    )
    return True


def monitor_config(schedule: Schedule) -> MonitorConfig | None:
    """Sentry's copy of the schedule, so it alerts when a slot's check-in does not come."""
    if len(schedule.cron.split()) != 5:  # Sentry's crontab has no seconds field
        return None
    return {
        "schedule": {"type": "crontab", "value": schedule.cron},
        "timezone": schedule.timezone,
        "checkin_margin": max(1, int(schedule.catchup.total_seconds() // 60)),
        "max_runtime": max(1, int(schedule.timeout.total_seconds() // 60)),
    }


def check_in(schedule: Schedule, record: dict[str, Any]) -> None:
    """Report a scheduled run's end to Sentry Crons; manual runs and duplicates are not slots."""
    config = monitor_config(schedule)
    if not sentry_sdk.is_initialized() or config is None or record.get("manual"):
        return
    if record.get("status") not in OUTCOMES:
        return
    capture_checkin(
        monitor_slug=schedule.name,
        status=OUTCOMES[record["status"]],
        duration=record.get("finished", 0) - record.get("started", 0),
        monitor_config=config,
    )
