"""Error reporting to Sentry, with secrets and Slack message text scrubbed before sending."""

from __future__ import annotations

from typing import Any

import sentry_sdk
from sentry_sdk.crons import MonitorStatus, capture_checkin
from sentry_sdk.integrations import Integration
from sentry_sdk.types import Event, Hint, MonitorConfig

from jobs.config import Settings
from jobs.digest.ledger import RunRecord
from jobs.redaction import Redactor
from jobs.scheduling.slots import Schedule

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


def init_sentry(settings: Settings, *integrations: Integration) -> bool:
    """Start reporting when `SENTRY_DSN` is set, with the process's own framework's integration
    (Starlette's in the web, Celery's in workers and beat); returns whether it did."""
    if not settings.sentry_dsn:
        return False
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.sentry_environment,
        integrations=list(integrations),
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


def check_in(schedule: Schedule, record: RunRecord) -> None:
    """Report a scheduled run's end to Sentry Crons; manual runs are not slots."""
    config = monitor_config(schedule)
    if not sentry_sdk.is_initialized() or config is None or record.manual:
        return
    if record.status not in OUTCOMES:
        return
    capture_checkin(
        monitor_slug=schedule.name,
        status=OUTCOMES[record.status],
        duration=record.finished - record.started,
        monitor_config=config,
    )
