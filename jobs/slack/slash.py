"""The `/digest` slash command's words: its usage, and how a line splits into a subcommand and
its arguments. The web answers `help` at once from here; the worker answers the rest."""

from __future__ import annotations

from typing import Any

USAGE = "\n".join(
    [
        "*Slack Digests*: scheduled digests of channel activity.",
        "`/digest now [#channel] [7d]`: a digest of this channel (or #channel) for the last "
        "7 days (or 24h, 30d…), posted here.",
        "`/digest schedules`: each schedule's next slot and how its last run ended.",
        "`/digest run NAME`: run schedule NAME now, a manual run whose window ends now.",
        "`/digest pause NAME [1d|1w|2026-12-24]`: skip its slots until then, or until resumed.",
        "`/digest resume NAME`: run its slots again.",
        "`/digest help`: this message.",
    ]
)

# The form Slack posts for a slash command, without its deprecated verification token.
SlashCommand = dict[str, Any]


def split(text: str) -> tuple[str, list[str]]:
    """The subcommand, lower-cased, and its arguments."""
    words = text.split()
    return (words[0].lower(), words[1:]) if words else ("", [])


def is_immediate(text: str) -> bool:
    """Help is answered in the request itself; everything else goes to a worker."""
    return split(text)[0] in ("", "help")
