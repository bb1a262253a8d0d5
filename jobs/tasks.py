"""Celery tasks: thin entry points that hand work to the modules that know how to do it.

Only Celery loads this module (`jobs.celery` includes it); everything else queues by name through
`jobs.queue`. Each task is registered under the name `jobs.queue` gives it.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime
from typing import Any

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import beat_init, celeryd_init, setup_logging
from sentry_sdk.integrations.celery import CeleryIntegration
from slack_sdk.webhook import WebhookClient

from jobs import queue
from jobs.celery import app
from jobs.config import get_settings
from jobs.connections import shared_redis
from jobs.digest import pipeline
from jobs.digest.ledger import Duplicate, RunRecord
from jobs.errors import RateLimited, RetryableError
from jobs.logs import configure_logging
from jobs.scheduling.file import schedules_file
from jobs.scheduling.slots import Schedule
from jobs.sentry import check_in, init_sentry
from jobs.slack import commands, events
from jobs.slack.api import web_client
from jobs.slack.slash import split

logger = logging.getLogger(__name__)


@setup_logging.connect
def _setup_logging(**_: Any) -> None:
    configure_logging(get_settings())


@celeryd_init.connect
@beat_init.connect
def _setup_sentry(**_: Any) -> None:
    init_sentry(get_settings(), CeleryIntegration())


@app.task(name=queue.EVENT_TASK)
def handle_event(envelope: dict[str, Any]) -> dict[str, Any]:
    """One Slack Events API callback, already verified and deduplicated by the webhook."""
    handled = events.handle(envelope, get_settings(), shared_redis())
    event = envelope.get("event") or {}
    return {"event_id": envelope.get("event_id"), "type": event.get("type"), "handled": handled}


@app.task(
    name=queue.COMMAND_TASK,
    autoretry_for=(OSError, RetryableError),
    retry_backoff=True,
    max_retries=4,
)
def handle_command(command: dict[str, Any]) -> dict[str, Any]:
    """A `/digest` subcommand; the answer goes back to the user through `response_url`."""
    text = commands.reply(command, get_settings(), shared_redis())
    response = WebhookClient(str(command["response_url"])).send(
        text=text, response_type="ephemeral"
    )
    if response.status_code == 429 or response.status_code >= 500:
        raise RetryableError(f"Slack's response_url answered HTTP {response.status_code}")
    if response.status_code != 200:
        raise RuntimeError(f"Slack refused the reply to /digest: HTTP {response.status_code}")
    return {"command": split(str(command.get("text", "")))[0], "replied": True}


# Rate limits and outages together; past this the run is recorded as failed.
MAX_RETRIES = 30
MAX_BACKOFF = 300.0


def backoff(retries: int) -> float:
    """Exponential, capped, with full jitter so that many runs do not retry in step."""
    return random.uniform(1.0, min(MAX_BACKOFF, 2.0 ** (retries + 1)))


@app.task(bind=True, name=queue.RUN_TASK, max_retries=MAX_RETRIES)
def run_digest(self: Task, schedule_name: str, slot: str, manual: bool = False) -> dict[str, Any]:
    """One schedule's digest for one slot (an ISO-8601 instant, or the moment a manual run was
    asked for); the run's record is the result."""
    settings = get_settings()
    schedule = schedules_file(settings.schedules_file).read().get(schedule_name)
    run = queue.Run(schedule.name, datetime.fromisoformat(slot), manual)

    def progress(**counts: Any) -> None:
        self.update_state(state="PROGRESS", meta=counts)

    try:
        done = pipeline.run_digest(
            settings, web_client(settings), shared_redis(), schedule, run, self.request.id, progress
        )
    except RetryableError as error:
        if self.request.retries < MAX_RETRIES:
            wait = (
                error.retry_after
                if isinstance(error, RateLimited)
                else backoff(self.request.retries)
            )
            logger.warning("run %s waits %.1fs: %s", run.id, wait, error)
            raise self.retry(countdown=wait + random.uniform(0, 1)) from None
        done = pipeline.give_up(shared_redis(), run, f"gave up: {error}")
    except SoftTimeLimitExceeded:
        timeout = f"{schedule.timeout.total_seconds():g}s"
        done = pipeline.give_up(shared_redis(), run, f"timed out after {timeout}")
    report(schedule, done)
    return done.as_dict()


def report(schedule: Schedule, record: RunRecord | Duplicate) -> None:
    """One log line per run (counts, never message text), and its Sentry Crons check-in."""
    if isinstance(record, Duplicate):
        logger.info("run %s: duplicate (task %s runs it)", record.run, record.owner)
        return
    counts = " ".join(f"{name}={value}" for name, value in (record.totals or {}).items())
    error = f" ({record.error})" if record.error else ""
    logger.info("run %s: %s%s %s", record.run, record.status, error, counts)
    check_in(schedule, record)
