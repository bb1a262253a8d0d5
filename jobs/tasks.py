"""Celery tasks: thin wrappers that hand work to the modules that know how to do it."""

from __future__ import annotations

import logging
import random
import uuid
from datetime import datetime
from functools import cache
from typing import Any

import redis
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from celery.result import AsyncResult
from celery.signals import beat_init, celeryd_init, setup_logging
from slack_sdk.webhook import WebhookClient

from jobs import commands, events, keys, schedules
from jobs.celery import app
from jobs.config import get_settings
from jobs.connections import sync_redis, text
from jobs.digest import pipeline
from jobs.digest.deliver import MailDeferred
from jobs.digest.slack import DigestFailed, RateLimited, SlackUnavailable, web_client
from jobs.logs import configure_logging
from jobs.runs import run_id
from jobs.sentry import check_in, init_sentry

logger = logging.getLogger(__name__)


@setup_logging.connect
def _setup_logging(**_: Any) -> None:
    configure_logging(get_settings())


@celeryd_init.connect
@beat_init.connect
def _setup_sentry(**_: Any) -> None:
    init_sentry(get_settings())


@cache
def redis_client() -> redis.Redis:
    return sync_redis(get_settings())


@app.task(name="jobs.tasks.handle_event")
def handle_event(envelope: dict[str, Any]) -> dict[str, Any]:
    """One Slack Events API callback, already verified and deduplicated by the webhook."""
    handled = events.handle(envelope, get_settings(), redis_client())
    event = envelope.get("event") or {}
    return {"event_id": envelope.get("event_id"), "type": event.get("type"), "handled": handled}


class ReplyNotDelivered(RuntimeError):
    """Slack's `response_url` answered with an error that may pass."""


@app.task(
    name="jobs.tasks.handle_command",
    autoretry_for=(OSError, ReplyNotDelivered),
    retry_backoff=True,
    max_retries=4,
)
def handle_command(command: dict[str, Any]) -> dict[str, Any]:
    """A `/digest` subcommand; the answer goes back to the user through `response_url`."""
    text = commands.reply(command, get_settings(), redis_client())
    response = WebhookClient(str(command["response_url"])).send(
        text=text, response_type="ephemeral"
    )
    if response.status_code == 429 or response.status_code >= 500:
        raise ReplyNotDelivered(f"Slack's response_url answered HTTP {response.status_code}")
    if response.status_code != 200:
        raise RuntimeError(f"Slack refused the reply to /digest: HTTP {response.status_code}")
    return {"command": commands.split(str(command.get("text", "")))[0], "replied": True}


# Rate limits and outages together; past this the run is recorded as failed.
MAX_RETRIES = 30
MAX_BACKOFF = 300.0


def backoff(retries: int) -> float:
    """Exponential, capped, with full jitter so that many runs do not retry in step."""
    return random.uniform(1.0, min(MAX_BACKOFF, 2.0 ** (retries + 1)))


@app.task(bind=True, name="jobs.tasks.run_digest", max_retries=MAX_RETRIES)
def run_digest(self: Task, schedule_name: str, slot: str) -> dict[str, Any]:
    """One schedule's digest for one slot (an ISO-8601 instant); the run's record is the result."""
    settings = get_settings()
    schedule = schedules.load(settings.schedules_file).get(schedule_name)
    if schedule is None:
        raise DigestFailed(f"{settings.schedules_file} has no schedule named {schedule_name!r}")
    moment = schedules.parse_slot(slot, schedule)

    def progress(**counts: Any) -> None:
        self.update_state(state="PROGRESS", meta=counts)

    try:
        record = pipeline.run(
            settings,
            web_client(settings),
            redis_client(),
            schedule,
            moment,
            self.request.id,
            progress,
        )
    except (RateLimited, SlackUnavailable, MailDeferred) as error:
        if self.request.retries < MAX_RETRIES:
            wait = (
                error.retry_after
                if isinstance(error, RateLimited)
                else backoff(self.request.retries)
            )
            logger.warning("run %s@%s waits %.1fs: %s", schedule_name, slot, wait, error)
            raise self.retry(countdown=wait + random.uniform(0, 1)) from None
        record = pipeline.give_up(redis_client(), schedule, moment, f"gave up: {error}")
    except SoftTimeLimitExceeded:
        timeout = f"{schedule.timeout.total_seconds():g}s"
        record = pipeline.give_up(redis_client(), schedule, moment, f"timed out after {timeout}")
    report(schedule, record)
    return record


def report(schedule: schedules.Schedule, record: dict[str, Any]) -> None:
    """One log line per run (counts, never message text), and its Sentry Crons check-in."""
    totals = record.get("totals") or {}
    counts = " ".join(f"{name}={value}" for name, value in totals.items())
    logger.info(
        "run %s: %s%s %s",
        record.get("run"),
        record.get("status"),
        f" ({record['error']})" if record.get("error") else "",
        counts,
    )
    check_in(schedule, record)


def time_limits(schedule: schedules.Schedule) -> tuple[float, float]:
    """(hard, soft) seconds: at the soft one, the schedule's `timeout`, the run records itself
    as timed out, and the hard one leaves it half a minute to do so."""
    seconds = schedule.timeout.total_seconds()
    return seconds + 30, seconds


def enqueue_run(schedule: schedules.Schedule, slot: datetime) -> AsyncResult:
    """Queue a run of `slot` with the schedule's `timeout` as its time limit.

    When the slot already has a queued task (beat and a trigger asked for it), that task is
    returned. The message is sent before the record is written: a crash in between leaves an
    extra task, which the worker's claim turns away, never a record of a task never sent.
    """
    client = redis_client()
    run = run_id(schedule.name, slot)
    queued = client.get(keys.enqueued(run))
    if queued is not None:
        return AsyncResult(text(queued), app=app)
    task_id = str(uuid.uuid4())
    client.set(keys.task(task_id), 1, ex=keys.TASK_RECORD_TTL)
    hard, soft = time_limits(schedule)
    run_digest.apply_async(
        (schedule.name, slot.isoformat()),
        task_id=task_id,
        soft_time_limit=soft,
        time_limit=hard,
    )
    if client.set(keys.enqueued(run), task_id, nx=True, ex=keys.RUN_TTL):
        return AsyncResult(task_id, app=app)
    owner = client.get(keys.enqueued(run))
    return AsyncResult(text(owner) if owner else task_id, app=app)
