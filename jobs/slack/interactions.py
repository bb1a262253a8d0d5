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
from jobs.errors import DigestsError, PermanentError, ScheduleError, UnknownSchedule
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


UNTIL_OPTIONS = (("until someone resumes it", "-"), ("for 1 day", "1d"), ("for 1 week", "1w"))


def pause_dialog(schedule: Schedule) -> dict[str, Any]:
    """The modal that asks until when to pause; its submission comes back as a
    `view_submission` with the schedule's name in `private_metadata`."""
    options = [
        {"text": {"type": "plain_text", "text": text}, "value": value}
        for text, value in UNTIL_OPTIONS
    ]
    return {
        "type": "modal",
        "callback_id": "digest_pause",
        "private_metadata": schedule.name,
        "title": {"type": "plain_text", "text": "Pause a digest"},
        "submit": {"type": "plain_text", "text": "Pause"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"Skip the slots of *{escape(schedule.title)}*"},
            },
            {
                "type": "input",
                "block_id": "for",
                "label": {"type": "plain_text", "text": "How long"},
                "element": {
                    "type": "static_select",
                    "action_id": "for",
                    "options": options,
                    "initial_option": options[0],
                },
            },
            {
                "type": "input",
                "block_id": "date",
                "optional": True,
                "label": {"type": "plain_text", "text": "Or until a date"},
                "element": {"type": "datepicker", "action_id": "date"},
            },
        ],
    }


def submitted_until(view: dict[str, Any]) -> str:
    """What the pause dialog asked for: a date if one was picked, else the choice ("" for until
    resumed)."""
    values = (view.get("state") or {}).get("values") or {}
    date = ((values.get("date") or {}).get("date") or {}).get("selected_date")
    if date:
        return str(date)
    chosen = ((values.get("for") or {}).get("for") or {}).get("selected_option") or {}
    value = str(chosen.get("value") or "-")
    return "" if value == "-" else value


def handle(payload: Payload, settings: Settings, cache: redis.Redis, web: WebClient) -> str:
    """Carry out one interaction; what was done, for the task's result (no message text)."""
    user = str(payload["user"]["id"])
    kind = payload.get("type")
    if kind == "view_submission":
        view = payload.get("view") or {}
        if view.get("callback_id") != "digest_pause":
            logger.info("view_submission from %s: unknown callback id", user)
            return "unknown view"
        action_id, name = "digest_pause_until", str(view.get("private_metadata", ""))
        action: dict[str, Any] = {"until": submitted_until(view)}
    elif kind == "block_actions":
        action = (payload.get("actions") or [{}])[0]
        action_id, name = str(action.get("action_id", "")), str(action.get("value", ""))
    else:
        logger.info("interaction %s from %s: nothing to do", kind, user)
        return "ignored"
    if action_id not in VERBS:
        logger.info("interaction from %s: unknown action id %r", user, action_id)
        return "unknown action"
    verb = VERBS[action_id]
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
        if action_id == "digest_preview":  # for whoever sees the schedule, privately
            answer, done = preview(settings, web, cache, schedule, user)
        elif not may_operate(schedule, user, settings):
            logger.info("refused %s of %s to %s: not an owner or admin", verb, name, user)
            answer = (
                f"No {verb}: only the owners of `{schedule.name}` and the admins may {verb} it."
            )
            done = "refused"
        elif not schedule.enabled:
            answer, done = f"No {verb}: `{schedule.name}` is disabled.", "disabled"
        elif action_id == "digest_pause" and ask_until(web, payload, schedule):
            return "asked until when"  # the dialog's submission pauses it
        elif action_id == "digest_pause_until":
            answer, done = pause_until(schedule, user, cache, str(action["until"]))
        else:
            answer, done = ACTIONS[action_id][1](schedule, user, cache, clicked_at(action)), verb
    call(web, "chat.postMessage", channel=user, text=answer)
    home.publish(settings, web, cache, user)
    return done


# Every action id a click or a dialog may carry, and its verb in answers.
VERBS = {
    **{action_id: verb for action_id, (verb, _) in ACTIONS.items()},
    "digest_preview": "preview",
    "digest_pause_until": "pause",
}


def ask_until(web: WebClient, payload: Payload, schedule: Schedule) -> bool:
    """Open the pause dialog; False when Slack would not (the click's `trigger_id` lasts 3 s):
    then the schedule is paused until resumed, as the dialog's first choice says."""
    trigger = payload.get("trigger_id")
    if not trigger:
        return False
    try:
        call(web, "views.open", trigger_id=str(trigger), view=pause_dialog(schedule))
    except DigestsError as error:
        logger.info("could not open the pause dialog for %s: %s", schedule.name, error)
        return False
    return True


def pause_until(schedule: Schedule, user: str, cache: redis.Redis, until: str) -> tuple[str, str]:
    now = datetime.now(UTC)
    try:
        end = pause.parse_until(until, now, schedule.zone) if until else None
    except ScheduleError as error:
        return f"No pause: {escape(str(error))}.", "bad until"
    pause.pause(cache, schedule.name, user, now, end)
    when = (
        f"until {end.astimezone(schedule.zone):%Y-%m-%d %H:%M %Z}"
        if end
        else "until someone resumes it"
    )
    return f"Paused `{schedule.name}` {when}: its slots are skipped.", "pause"
