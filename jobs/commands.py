"""The `/digest` slash command: its usage, and the worker side of its subcommands."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

USAGE = "\n".join(
    [
        "*Slack Digests*: scheduled digests of channel activity.",
        "`/digest help`: this message.",
    ]
)

Command = dict[str, Any]
# Subcommand name → the reply it sends back to the user.
SUBCOMMANDS: dict[str, Callable[[Command, list[str]], str]] = {}


def split(text: str) -> tuple[str, list[str]]:
    """The subcommand, lower-cased, and its arguments."""
    words = text.split()
    return (words[0].lower(), words[1:]) if words else ("", [])


def is_immediate(text: str) -> bool:
    """Help is answered in the request itself; everything else goes to a worker."""
    return split(text)[0] in ("", "help")


def reply(command: Command) -> str:
    """What the worker answers to a queued subcommand."""
    name, args = split(str(command.get("text", "")))
    action = SUBCOMMANDS.get(name)
    if action is None:
        return f"`/digest {name}` is not a command I know.\n{USAGE}"
    return action(command, args)
