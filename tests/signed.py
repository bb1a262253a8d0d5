"""Requests as Slack signs them, for tests."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import orjson

SECRET = "test-signing-secret-0123456789abcdef"


def signature_headers(
    body: bytes, secret: str = SECRET, timestamp: int | None = None
) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256)
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": "v0=" + digest.hexdigest()}


def event_callback(
    event_type: str = "app_mention", event_id: str | None = None, **event: Any
) -> dict[str, Any]:
    """An Events API envelope shaped like Slack's."""
    return {
        "token": "deprecated-verification-token",
        "team_id": "T0001",
        "api_app_id": "A0001",
        "event": {"type": event_type, "user": "U0001", "channel": "C0001", "ts": "1.000", **event},
        "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:12].upper()}",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": "T0001", "user_id": "U0BOT", "is_bot": True}],
    }


def signed_json(payload: Any, secret: str = SECRET, **headers: str) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps(payload)
    return body, {"Content-Type": "application/json", **signature_headers(body, secret), **headers}


def command_form(
    text: str, response_url: str = "http://127.0.0.1:9/unused", **fields: str
) -> dict[str, str]:
    return {
        "token": "deprecated-verification-token",
        "team_id": "T0001",
        "channel_id": "C0001",
        "user_id": "U0001",
        "command": "/digest",
        "text": text,
        "response_url": response_url,
        "trigger_id": "1.2.3",
        **fields,
    }


def signed_form(fields: dict[str, str], secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    body = urlencode(fields).encode()
    return body, {
        "Content-Type": "application/x-www-form-urlencoded",
        **signature_headers(body, secret),
    }
