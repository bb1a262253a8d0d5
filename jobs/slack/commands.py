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
from jobs.scheduling import status
from jobs.scheduling.file import schedules_file
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


def run(command: SlashCommand, args: list[str], settings: Settings, client: redis.Redis) -> str:
    """Queue a manual run and say so; the run itself may take minutes, so no waiting here."""
    if len(args) != 1:
        return "Which schedule? `/digest run NAME`; `/digest schedules` lists them."
    try:
        schedule = schedules_file(settings.schedules_file).read().get(args[0])
    except UnknownSchedule:
        return f"No run: there is no schedule named `{escape(args[0])}`; see `/digest schedules`."
    except ScheduleError as error:
        return f"No run: the schedules file does not load: {escape(str(error))}"
    if not schedule.enabled:
        return f"No run: `{schedule.name}` is disabled."
    slot = datetime.now(schedule.zone)
    run = queue.Run(schedule.name, slot, manual=True)
    task_id = queue.enqueue(client, queue.run_job(schedule, run)).task_id
    progress = f" Progress: {settings.public_url}tasks/{task_id}" if settings.public_url else ""
    return (
        f"Started {schedule.name}: a manual run of the window ending {slot:%Y-%m-%d %H:%M %Z}"
        f" (task `{task_id}`).{progress}"
    )


# Subcommand name → what the worker does and the reply it sends back to the user.
SUBCOMMANDS: dict[str, Action] = {"now": now, "schedules": schedules, "run": run}


def reply(command: SlashCommand, settings: Settings, client: redis.Redis) -> str:
    """What the worker answers to a queued subcommand."""
    name, args = split(str(command.get("text", "")))
    action = SUBCOMMANDS.get(name)
    if action is None:
        return f"`/digest {escape(name)}` is not a command I know.\n{USAGE}"
    return action(command, args, settings, client)
