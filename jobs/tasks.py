"""Celery tasks: thin wrappers that hand work to the modules that know how to do it."""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

import redis
from celery.signals import beat_init, celeryd_init, setup_logging
from slack_sdk.webhook import WebhookClient

from jobs import commands, events
from jobs.celery import app
from jobs.config import get_settings
from jobs.connections import sync_redis
from jobs.logs import configure_logging
from jobs.sentry import init_sentry

logger = logging.getLogger(__name__)


@setup_logging.connect
def _setup_logging(**_: Any) -> None:
    configure_logging(get_settings())


@celeryd_init.connect
@beat_init.connect
def _setup_sentry(**_: Any) -> None:
    init_sentry(get_settings())


@cache
def redis_client() -> redis.Redis:
    return sync_redis(get_settings())


@app.task(name="jobs.tasks.handle_event")
def handle_event(envelope: dict[str, Any]) -> dict[str, Any]:
    """One Slack Events API callback, already verified and deduplicated by the webhook."""
    handled = events.handle(envelope, get_settings(), redis_client())
    event = envelope.get("event") or {}
    return {"event_id": envelope.get("event_id"), "type": event.get("type"), "handled": handled}


class ReplyNotDelivered(RuntimeError):
    """Slack's `response_url` answered with an error that may pass."""


@app.task(
    name="jobs.tasks.handle_command",
    autoretry_for=(OSError, ReplyNotDelivered),
    retry_backoff=True,
    max_retries=4,
)
def handle_command(command: dict[str, Any]) -> dict[str, Any]:
    """A `/digest` subcommand; the answer goes back to the user through `response_url`."""
    text = commands.reply(command)
    response = WebhookClient(str(command["response_url"])).send(
        text=text, response_type="ephemeral"
    )
    if response.status_code == 429 or response.status_code >= 500:
        raise ReplyNotDelivered(f"Slack's response_url answered HTTP {response.status_code}")
    if response.status_code != 200:
        raise RuntimeError(f"Slack refused the reply to /digest: HTTP {response.status_code}")
    return {"command": commands.split(str(command.get("text", "")))[0], "replied": True}
