"""Slack's markup (mrkdwn): read users' text as plain text, and make plain text inert.

Anything that shows users' Slack text reads it with `plain` first and writes it with `escape`,
so what it shows can neither ping `@channel` nor carry a link a user forged.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

MARKUP = re.compile(r"<([^<>]*)>|&(amp|lt|gt);")
ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}
BROADCASTS = frozenset({"channel", "here", "everyone"})


def plain(text: str, names: Mapping[str, str]) -> str:
    """Slack mrkdwn as one line of readable text: mentions named, links spelled out, none live."""

    def token(match: re.Match[str]) -> str:
        content, entity = match.groups()
        return ENTITIES[entity] if entity else markup(content, names)

    return " ".join(MARKUP.sub(token, text).split())


def markup(content: str, names: Mapping[str, str]) -> str:
    """One `<…>` of Slack markup as the words it shows."""
    target, _, label = (unescape(part) for part in content.partition("|"))
    kind, rest = target[:1], target[1:]
    if kind == "@":
        return "@" + (names.get(rest) or label or rest)
    if kind == "#":
        return "#" + (names.get(rest) or label or rest)
    if kind == "!":
        return "@" + rest if rest in BROADCASTS else label or "@" + rest.partition("^")[0]
    if ":" in target:
        return f"{label} ({target})" if label and label != target else target
    return f"<{unescape(content)}>"


def unescape(text: str) -> str:
    return MARKUP.sub(lambda m: ENTITIES[m[2]] if m[2] else m[0], text)


def escape(text: str) -> str:
    """Plain text made inert in Slack mrkdwn: `&`, `<` and `>` as Slack's entities."""
    return html.escape(text, quote=False)
