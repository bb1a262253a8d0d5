"""How Slack reads a call's arguments: strings from a form or values from JSON, cursors it
issued, page sizes clamped to its limits; a bad one is an `ok: false` answer, as `SlackError`."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from sandbox.workspace import ts_micros

Args = dict[str, Any]


class SlackError(Exception):
    """An `ok: false` answer; `error` is Slack's code for what went wrong."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def encode_cursor(position: str) -> str:
    return base64.urlsafe_b64encode(position.encode()).decode()


def decode_cursor(cursor: str, prefix: str) -> int:
    """The position a cursor of ours names; anything else is Slack's `invalid_cursor`."""
    try:
        kind, _, position = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if kind != prefix:
            raise ValueError(kind)
        return int(position)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise SlackError("invalid_cursor") from None


def limit_arg(args: Args, bounds: tuple[int, int]) -> int:
    """`limit` clamped to Slack's maximum; 0 or absent means the default."""
    default, most = bounds
    try:
        limit = int(args.get("limit") or 0)
    except (TypeError, ValueError):
        raise SlackError("invalid_limit") from None
    return min(limit, most) if limit > 0 else default


def flag_arg(args: Args, name: str) -> bool:
    return str(args.get(name, "")).lower() in ("1", "true")


def ts_arg(args: Args, name: str, error: str) -> int | None:
    value = args.get(name)
    if value in (None, ""):
        return None
    try:
        return ts_micros(str(value))
    except ValueError:
        raise SlackError(error) from None


def json_arg(args: Args, name: str, error: str) -> Any:
    """An argument that form-encoded clients send as a JSON string and JSON clients as a value."""
    value = args.get(name)
    if not isinstance(value, str):
        return value
    try:
        return orjson.loads(value) if value else None
    except orjson.JSONDecodeError:
        raise SlackError(error) from None


def page_of(
    items: list[Any], args: Args, bounds: tuple[int, int], kind: str
) -> tuple[list[Any], str]:
    """One page of a list and the cursor of the next ("" at the end)."""
    cursor = args.get("cursor")
    start = decode_cursor(cursor, kind) if cursor else 0
    end = start + (limit_arg(args, bounds) or len(items))
    return items[start:end], encode_cursor(f"{kind}:{end}") if end < len(items) else ""
