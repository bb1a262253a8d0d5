"""The worker side of the `/digest` subcommands: what each one does, and the reply it sends."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import redis

from jobs import queue
from jobs.config import Settings
from jobs.digest import on_demand
from jobs.errors import ScheduleError, UnknownSchedule
from jobs.scheduling import pause, status
from jobs.scheduling.file import schedules_file
from jobs.scheduling.slots import Schedule
from jobs.slack.mrkdwn import escape
from jobs.slack.slash import USAGE, SlashCommand, split

logger = logging.getLogger(__name__)

Action = Callable[[SlashCommand, list[str], Settings, redis.Redis], str]


def now(command: SlashCommand, args: list[str], settings: Settings, client: redis.Redis) -> str:
    return on_demand.answer(
        settings,
        client,
        args=args,
        here=str(command["channel_id"]),
        request=str(command.get("trigger_id") or command["response_url"]),
    ).text


def schedules(
    command: SlashCommand, args: list[str], settings: Settings, client: redis.Redis
) -> str:
    """What `GET /schedules` shows, in brief: a schedule a line, then the file's errors."""
    loaded = schedules_file(settings.schedules_file).read()
    shown = status.read(client, loaded, datetime.now(UTC))
    lines = ["*Schedules*"] if shown["schedules"] else ["There are no schedules."]
    for row in shown["schedules"]:
        upcoming = f"next {row['next'][0]['local']}" if row["next"] else "disabled"
        lines.append(
            f"• `{row['name']}` ({escape(row['cron'])}, {row['timezone']}): {upcoming}; "
            f"last: {escape(status.outcome(row))}"
        )
    return "\n".join(lines + [f":warning: {escape(error)}" for error in shown["errors"]])


def may_operate(schedule: Schedule, user: str, settings: Settings) -> bool:
    """Whether the user may run, pause and resume the schedule: one of its `owners` or of
    ADMIN_USERS; while neither is set anywhere, anyone in the workspace (as before either)."""
    if not schedule.owners and not settings.admin_users:
        return True
    return user in schedule.owners or user in settings.admin_users


def operated(
    verb: str, command: SlashCommand, args: list[str], settings: Settings
) -> Schedule | str:
    """The schedule `/digest VERB NAME` may act on, or the reply saying why not."""
    if not args:
        return f"Which schedule? `/digest {verb} NAME`; `/digest schedules` lists them."
    try:
        schedule = schedules_file(settings.schedules_file).read().get(args[0])
    except UnknownSchedule:
        unknown = escape(args[0])
        return f"No {verb}: there is no schedule named `{unknown}`; see `/digest schedules`."
    except ScheduleError as error:
        return f"No {verb}: the schedules file does not load: {escape(str(error))}"
    user = str(command.get("user_id", ""))
    if not may_operate(schedule, user, settings):
        logger.info("refused /digest %s %s to %s: not an owner or admin", verb, schedule.name, user)
        return (
            f"No {verb}: only the owners of `{schedule.name}` and the admins may {verb} it; "
            "ask one of them."
        )
    return schedule


def run(command: SlashCommand, args: list[str], settings: Settings, client: redis.Redis) -> str:
    """Queue a manual run and say so; the run itself may take minutes, so no waiting here."""
    if len(args) > 1:
        return "Which schedule? `/digest run NAME`; `/digest schedules` lists them."
    schedule = operated("run", command, args, settings)
    if isinstance(schedule, str):
        return schedule
    if not schedule.enabled:
        return f"No run: `{schedule.name}` is disabled."
    slot = datetime.now(schedule.zone)
    run = queue.Run(schedule.name, slot, True, str(command.get("user_id", "")))
    task_id = queue.enqueue(client, queue.run_job(schedule, run)).task_id
    progress = f" Progress: {settings.public_url}tasks/{task_id}" if settings.public_url else ""
    return (
        f"Started {schedule.name}: a manual run of the window ending {slot:%Y-%m-%d %H:%M %Z}"
        f" (task `{task_id}`).{progress}"
    )


def pause_schedule(
    command: SlashCommand, args: list[str], settings: Settings, client: redis.Redis
) -> str:
    """`/digest pause NAME [WHEN]`: its slots are skipped until WHEN, or until resumed."""
    schedule = operated("pause", command, args, settings)
    if isinstance(schedule, str):
        return schedule
    moment = datetime.now(UTC)
    try:
        until = pause.parse_until(" ".join(args[1:]), moment, schedule.zone) if args[1:] else None
    except ScheduleError as error:
        return f"No pause: {escape(str(error))}."
    who = str(command.get("user_id", ""))
    pause.pause(client, schedule.name, who, moment, until)
    when = f"until {until:%Y-%m-%d %H:%M %Z}" if until else "until someone resumes it"
    again = f"`/digest resume {schedule.name}`"
    return f"Paused `{schedule.name}` {when}: its slots are skipped ({again} runs them again)."


def resume_schedule(
    command: SlashCommand, args: list[str], settings: Settings, client: redis.Redis
) -> str:
    schedule = operated("resume", command, args[:1], settings)
    if isinstance(schedule, str):
        return schedule
    if pause.resume(client, schedule.name, str(command.get("user_id", "")), datetime.now(UTC)):
        return f"Resumed `{schedule.name}`: its next slot runs."
    return f"`{schedule.name}` was not paused."


# Subcommand name → what the worker does and the reply it sends back to the user.
SUBCOMMANDS: dict[str, Action] = {
    "now": now,
    "schedules": schedules,
    "run": run,
    "pause": pause_schedule,
    "resume": resume_schedule,
}


def reply(command: SlashCommand, settings: Settings, client: redis.Redis) -> str:
    """What the worker answers to a queued subcommand."""
    name, args = split(str(command.get("text", "")))
    action = SUBCOMMANDS.get(name)
    if action is None:
        return f"`/digest {escape(name)}` is not a command I know.\n{USAGE}"
    return action(command, args, settings, client)
