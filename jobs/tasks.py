"""Celery tasks: thin entry points that hand work to the modules that know how to do it.

Only Celery loads this module (`jobs.celery` includes it); everything else queues by name through
`jobs.queue`. Each task is registered under the name `jobs.queue` gives it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import datetime
from typing import Any

import redis
from celery import Task
from celery.exceptions import Ignore, Retry, SoftTimeLimitExceeded
from celery.signals import beat_init, celeryd_init, setup_logging, worker_shutting_down
from sentry_sdk.integrations.celery import CeleryIntegration
from slack_sdk.webhook import WebhookClient

from jobs import inflight, keys, queue
from jobs.celery import app
from jobs.config import get_settings
from jobs.connections import shared_redis
from jobs.digest import pipeline, retries
from jobs.digest.ledger import Duplicate, Ledger, RunRecord
from jobs.errors import RateLimited, RetryableError, ShuttingDown
from jobs.logs import configure_logging
from jobs.scheduling.file import schedules_file
from jobs.scheduling.slots import Schedule, read_alongside
from jobs.sentry import check_in, init_sentry
from jobs.slack import commands, events, interactions
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


class Leased(Task):  # type: ignore[misc]  # Celery has no type hints
    """A task that holds its work's lease while it runs (`jobs.inflight`): a copy of it that
    finds the work done does nothing, and one that finds it held looks again a few seconds
    later, so the work resumes soon after its holder died."""

    max_retries = None  # the tasks say when to stop
    lease: inflight.Lease | None = None  # the running one's, in this process

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.request.called_directly:
            return super().__call__(*args, **kwargs)
        lease = self.lease = inflight.Lease(
            shared_redis(), self.request.id, self.request.hostname or ""
        )
        try:
            held = lease.acquire()
        except redis.RedisError as error:
            raise self.retry(countdown=inflight.HOLDER_WAIT_SECONDS, exc=error) from None
        if held is None:
            raise Ignore()
        if not held:
            raise self.retry(countdown=inflight.HOLDER_WAIT_SECONDS)
        try:
            result = super().__call__(*args, **kwargs)
        except Retry as retry:
            release(lease, done=False, retry_in=inflight.seconds_until(retry.when))
            raise
        except redis.RedisError:  # not done: the journal queues it again once Redis is back
            release(lease, done=False)
            raise
        except Exception:
            release(lease, done=True)
            raise
        except BaseException:  # the process is stopping: another worker takes the work up
            release(lease, done=False)
            raise
        release(lease, done=True)
        return result


def release(lease: inflight.Lease, done: bool, retry_in: float = 0.0) -> None:
    try:
        lease.release(done, retry_in)
    except redis.RedisError as error:  # the lease lapses by itself; the journal still has it
        logger.warning("task %s could not release its lease: %s", lease.task_id, error)


@celeryd_init.connect
def _start_holding(sender: str, **_: Any) -> None:
    """A worker that starts again under the same node name is no longer shutting down."""
    with contextlib.suppress(redis.RedisError):  # not up yet: then nothing was set since
        shared_redis().delete(keys.stopping(sender))


@worker_shutting_down.connect
def _hand_back(sender: str, how: str = "", **_: Any) -> None:
    """On a warm shutdown, running runs hand their work back rather than hold it until the
    platform kills the process (Heroku: 30 s)."""
    if how == "Warm":
        try:
            inflight.stopping(shared_redis(), sender)
        except redis.RedisError as error:
            logger.warning("could not tell running tasks to hand back: %s", error)


@app.task(base=Leased, name=queue.EVENT_TASK)
def handle_event(envelope: dict[str, Any]) -> dict[str, Any]:
    """One Slack Events API callback, already verified and deduplicated by the webhook."""
    handled = events.handle(envelope, get_settings(), shared_redis())
    event = envelope.get("event") or {}
    return {"event_id": envelope.get("event_id"), "type": event.get("type"), "handled": handled}


# Tasks that answer a person in Slack: retried a few times while Slack or the network fails.
ANSWERING: dict[str, Any] = {
    "base": Leased,
    "autoretry_for": (OSError, RetryableError),
    "retry_backoff": True,
    "max_retries": 4,
}


@app.task(name=queue.COMMAND_TASK, **ANSWERING)
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


@app.task(name=queue.INTERACTION_TASK, **ANSWERING)
def handle_interaction(payload: dict[str, Any]) -> dict[str, Any]:
    """A click in the Home tab, verified and deduplicated by the webhook."""
    settings = get_settings()
    cache = shared_redis()
    done = interactions.handle(payload, settings, cache, web_client(settings, cache))
    return {"type": payload.get("type"), "done": done}


@app.task(base=Leased, bind=True, name=queue.RUN_TASK)
def run_digest(
    self: Task, schedule_name: str, slot: str, manual: bool = False, by: str = ""
) -> dict[str, Any]:
    """One schedule's digest for one slot (an ISO-8601 instant, or the moment a manual run was
    asked for); the run's record is the result."""
    settings = get_settings()
    loaded = schedules_file(settings.schedules_file).read()
    schedule = loaded.get(schedule_name)
    run = queue.Run(schedule.name, datetime.fromisoformat(slot), manual, by)
    alongside = read_alongside(schedule, loaded.schedules.values(), run.slot)

    def progress(**counts: Any) -> None:
        if self.lease is not None and self.lease.handing_back.is_set():
            raise ShuttingDown(f"the worker is shutting down during {counts.get('stage')}")
        self.update_state(state="PROGRESS", meta=counts)

    try:
        done = pipeline.run_digest(
            settings,
            web_client(settings, shared_redis(), run.id),
            shared_redis(),
            schedule,
            run,
            self.request.id,
            progress,
            alongside=alongside,
        )
    except (RetryableError, redis.RedisError) as error:
        done = try_again(self, schedule, run, error)
    except ShuttingDown as stopping:
        logger.info("run %s hands itself back: %s", run.id, stopping)
        raise self.retry(countdown=0) from None
    except SoftTimeLimitExceeded:
        timeout = f"{schedule.timeout.total_seconds():g}s"
        done = pipeline.give_up(shared_redis(), run, f"timed out after {timeout}")
    report(schedule, done)
    return done.as_dict()


def try_again(task: Task, schedule: Schedule, run: queue.Run, error: Exception) -> RunRecord:
    """Retry the run after the wait its failure calls for (raises Celery's `Retry`), or record
    it failed: after too many failures of one kind, or when the wait would pass its timeout."""
    kind = retries.kind(error)
    ledger = Ledger(shared_redis(), run.id)
    try:
        failures = 0 if isinstance(error, RateLimited) else ledger.count_failure(kind)
        started = ledger.started()
    except redis.RedisError:
        failures, started = task.request.retries + 1, None
    wait = retries.wait(error, failures)
    timeout = schedule.timeout.total_seconds()
    if wait is None:
        return pipeline.give_up(shared_redis(), run, f"gave up after {failures} tries: {error}")
    if started is not None and time.time() + wait > started + timeout:
        return pipeline.give_up(shared_redis(), run, f"timed out after {timeout:g}s: {error}")
    logger.warning("run %s waits %.1fs (%s): %s", run.id, wait, kind, error)
    raise task.retry(countdown=wait, exc=error) from None


def report(schedule: Schedule, record: RunRecord | Duplicate) -> None:
    """One log line per run (counts, never message text), and its Sentry Crons check-in."""
    if isinstance(record, Duplicate):
        logger.info("run %s: duplicate (task %s runs it)", record.run, record.owner)
        return
    counts = " ".join(f"{name}={value}" for name, value in (record.totals or {}).items())
    error = f" ({record.error})" if record.error else ""
    logger.info("run %s: %s%s %s", record.run, record.status, error, counts)
    check_in(schedule, record)
