"""The `/digest` slash command: its usage, and the worker side of its subcommands."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis

from jobs import status
from jobs.config import Settings
from jobs.digest import on_demand
from jobs.digest.render import escape
from jobs.schedules import ScheduleError, load

logger = logging.getLogger(__name__)

USAGE = "\n".join(
    [
        "*Slack Digests*: scheduled digests of channel activity.",
        "`/digest now [#channel] [7d]`: a digest of this channel (or #channel) for the last "
        "7 days (or 24h, 30d…), posted here.",
        "`/digest schedules`: each schedule's next slot and how its last run ended.",
        "`/digest run NAME`: run schedule NAME now, a manual run whose window ends now.",
        "`/digest help`: this message.",
    ]
)

Command = dict[str, Any]
Action = Callable[[Command, list[str], Settings, redis.Redis], str]


def now(command: Command, args: list[str], settings: Settings, client: redis.Redis) -> str:
    return on_demand.answer(
        settings,
        client,
        args=args,
        here=str(command["channel_id"]),
        request=str(command.get("trigger_id") or command["response_url"]),
    ).text


def schedules(command: Command, args: list[str], settings: Settings, client: redis.Redis) -> str:
    """What `GET /schedules` shows, in brief: a schedule a line, then the file's errors."""
    shown = status.read(client, status.read_file(settings.schedules_file), datetime.now(UTC))
    lines = ["*Schedules*"] if shown["schedules"] else ["There are no schedules."]
    for row in shown["schedules"]:
        upcoming = f"next {row['next'][0]['local']}" if row["next"] else "disabled"
        lines.append(
            f"• `{row['name']}` ({escape(row['cron'])}, {row['timezone']}): {upcoming}; "
            f"last: {escape(status.outcome(row))}"
        )
    return "\n".join(lines + [f":warning: {escape(error)}" for error in shown["errors"]])


def run(command: Command, args: list[str], settings: Settings, client: redis.Redis) -> str:
    """Queue a manual run and say so; the run itself may take minutes, so no waiting here."""
    from jobs.tasks import enqueue_run  # jobs.tasks imports this module

    if len(args) != 1:
        return "Which schedule? `/digest run NAME`; `/digest schedules` lists them."
    try:
        schedule = load(settings.schedules_file).get(args[0])
    except ScheduleError as error:
        return f"No run: the schedules file does not load: {escape(str(error))}"
    if schedule is None:
        return f"No run: there is no schedule named `{escape(args[0])}`; see `/digest schedules`."
    if not schedule.enabled:
        return f"No run: `{schedule.name}` is disabled."
    slot = datetime.now(schedule.zone)
    result = enqueue_run(schedule, slot)
    progress = f" Progress: {settings.public_url}tasks/{result.id}" if settings.public_url else ""
    return (
        f"Started {schedule.name}: a manual run of the window ending {slot:%Y-%m-%d %H:%M %Z}"
        f" (task `{result.id}`).{progress}"
    )


# Subcommand name → what the worker does and the reply it sends back to the user.
SUBCOMMANDS: dict[str, Action] = {"now": now, "schedules": schedules, "run": run}


def split(text: str) -> tuple[str, list[str]]:
    """The subcommand, lower-cased, and its arguments."""
    words = text.split()
    return (words[0].lower(), words[1:]) if words else ("", [])


def is_immediate(text: str) -> bool:
    """Help is answered in the request itself; everything else goes to a worker."""
    return split(text)[0] in ("", "help")


def reply(command: Command, settings: Settings, client: redis.Redis) -> str:
    """What the worker answers to a queued subcommand."""
    name, args = split(str(command.get("text", "")))
    action = SUBCOMMANDS.get(name)
    if action is None:
        return f"`/digest {name}` is not a command I know.\n{USAGE}"
    return action(command, args, settings, client)
