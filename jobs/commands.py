"""The `/digest` slash command: its usage, and the worker side of its subcommands."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import redis

from jobs.config import Settings
from jobs.digest import on_demand

logger = logging.getLogger(__name__)

USAGE = "\n".join(
    [
        "*Slack Digests*: scheduled digests of channel activity.",
        "`/digest now [#channel] [7d]`: a digest of this channel (or #channel) for the last "
        "7 days (or 24h, 30d…), posted here.",
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


# Subcommand name → what the worker does and the reply it sends back to the user.
SUBCOMMANDS: dict[str, Action] = {"now": now}


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
