"""The worker side of the Home tab's buttons: run now, pause and resume a schedule.

Each click is checked against who may (`commands.may_operate`), answered to the person in a
direct message (a refusal says why and does nothing else), kept in the schedule's action log
when it changed something, and followed by a fresh Home tab for them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from slack_sdk import WebClient

from jobs import queue
from jobs.config import Settings
from jobs.digest import pipeline
from jobs.digest.render.blocks import slack_messages
from jobs.errors import PermanentError, ScheduleError, UnknownSchedule
from jobs.scheduling import pause
from jobs.scheduling.file import schedules_file
from jobs.scheduling.slots import Schedule
from jobs.slack import home
from jobs.slack.api import call
from jobs.slack.commands import may_operate
from jobs.slack.mrkdwn import escape

logger = logging.getLogger(__name__)

Payload = dict[str, Any]
Act = Callable[[Schedule, str, redis.Redis, datetime], str]


def run_now(schedule: Schedule, user: str, cache: redis.Redis, clicked: datetime) -> str:
    """A manual run as of the click: a retried task asks for the same run, queued once."""
    moment = clicked.astimezone(schedule.zone)
    run = queue.Run(schedule.name, moment, True, user)
    task_id = queue.enqueue(cache, queue.run_job(schedule, run)).task_id
    pause.log_action(
        cache,
        schedule.name,
        {"action": "run", "who": user, "when": moment.isoformat(), "task_id": task_id},
    )
    return (
        f"Started `{schedule.name}`: a manual run of the window ending {moment:%Y-%m-%d %H:%M %Z}."
    )


def pause_now(schedule: Schedule, user: str, cache: redis.Redis, clicked: datetime) -> str:
    pause.pause(cache, schedule.name, user, datetime.now(UTC))
    return f"Paused `{schedule.name}` until someone resumes it: its slots are skipped."


def resume_now(schedule: Schedule, user: str, cache: redis.Redis, clicked: datetime) -> str:
    if pause.resume(cache, schedule.name, user, datetime.now(UTC)):
        return f"Resumed `{schedule.name}`: its next slot runs."
    return f"`{schedule.name}` was not paused."


def preview_to(
    settings: Settings, web: WebClient, cache: redis.Redis, schedule: Schedule, user: str
) -> str:
    """Build the schedule's digest of the window ending now and send it to `user` alone."""
    now = datetime.now(schedule.zone)
    built = pipeline.build(web, cache, pipeline.scheduled(cache, schedule, now), settings=settings)
    parts = slack_messages(built.digest, built.names)
    first = call(web, "chat.postMessage", channel=user, text=parts[0].text, blocks=parts[0].blocks)
    for part in parts[1:]:
        call(
            web,
            "chat.postMessage",
            channel=user,
            text=part.text,
            blocks=part.blocks,
            thread_ts=first["ts"],
        )
    return f"That was a preview of `{schedule.name}`, for you alone: nothing else was delivered."


ACTIONS: dict[str, tuple[str, Act]] = {
    "digest_run": ("run", run_now),
    "digest_pause": ("pause", pause_now),
    "digest_resume": ("resume", resume_now),
}


def preview(
    settings: Settings, web: WebClient, cache: redis.Redis, schedule: Schedule, user: str
) -> tuple[str, str]:
    if not home.may_preview(web, cache, settings, user, schedule):
        logger.info("refused a preview of %s to %s: not in its channels", schedule.name, user)
        why = "it reads a private channel you are not in, or none of yours"
        return f"No preview of `{schedule.name}`: {why}.", "refused"
    try:
        return preview_to(settings, web, cache, schedule, user), "preview"
    except PermanentError as error:
        return f"No preview of `{schedule.name}`: {escape(str(error))}", "failed"


def clicked_at(action: dict[str, Any]) -> datetime:
    """When the button was clicked (its `action_ts`), or now when Slack did not say or says a
    time more than a day off (a run's window ends then)."""
    now = datetime.now(UTC)
    try:
        clicked = datetime.fromtimestamp(float(action["action_ts"]), UTC)
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        return now
    return clicked if abs(clicked - now) < timedelta(days=1) else now


def handle(payload: Payload, settings: Settings, cache: redis.Redis, web: WebClient) -> str:
    """Carry out one interaction; what was done, for the task's result (no message text)."""
    user = str(payload["user"]["id"])
    if payload.get("type") != "block_actions":
        logger.info("interaction %s from %s: nothing to do", payload.get("type"), user)
        return "ignored"
    action = (payload.get("actions") or [{}])[0]
    action_id, name = str(action.get("action_id", "")), str(action.get("value", ""))
    known = ACTIONS.get(action_id)
    if known is None and action_id != "digest_preview":
        logger.info("interaction from %s: unknown action id %r", user, action_id)
        return "unknown action"
    verb = known[0] if known else "preview"
    try:
        schedule = schedules_file(settings.schedules_file).read().get(name)
    except UnknownSchedule:
        answer, done = (
            f"No {verb}: there is no schedule named `{escape(name)}` any more.",
            "unknown schedule",
        )
    except ScheduleError as error:
        answer, done = (
            f"No {verb}: the schedules file does not load: {escape(str(error))}",
            "broken file",
        )
    else:
        if known is None:  # a preview: for whoever sees the schedule, privately
            answer, done = preview(settings, web, cache, schedule, user)
        elif not may_operate(schedule, user, settings):
            logger.info("refused %s of %s to %s: not an owner or admin", verb, name, user)
            answer = (
                f"No {verb}: only the owners of `{schedule.name}` and the admins may {verb} it."
            )
            done = "refused"
        elif not schedule.enabled:
            answer, done = f"No {verb}: `{schedule.name}` is disabled.", "disabled"
        else:
            answer, done = known[1](schedule, user, cache, clicked_at(action)), verb
    call(web, "chat.postMessage", channel=user, text=answer)
    home.publish(settings, web, cache, user)
    return done
