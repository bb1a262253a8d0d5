"""What a worker does with each kind of Slack event; unknown kinds are acknowledged and dropped."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import redis

from jobs.config import Settings
from jobs.digest import on_demand
from jobs.errors import DigestsError
from jobs.slack import home
from jobs.slack.api import call, web_client
from jobs.slack.revocation import mark_revoked

logger = logging.getLogger(__name__)

# A user mention as Slack writes it in text: `<@U0123>`.
MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")

Envelope = dict[str, Any]
Handler = Callable[[Envelope, Settings, redis.Redis], None]


def describe(envelope: Envelope) -> str:
    """Who and where, never what: message text stays out of logs."""
    event = envelope.get("event") or {}
    return (
        f"{event.get('type')} event {envelope.get('event_id')} team={envelope.get('team_id')} "
        f"channel={event.get('channel')} user={event.get('user')}"
    )


def log_arrival(envelope: Envelope, settings: Settings, client: redis.Redis) -> None:
    logger.info("received %s", describe(envelope))


def home_opened(envelope: Envelope, settings: Settings, client: redis.Redis) -> None:
    """Someone opened the app's Home tab: publish theirs (its Messages tab needs nothing)."""
    log_arrival(envelope, settings, client)
    event = envelope.get("event") or {}
    if event.get("tab", "home") == "home" and event.get("user"):
        home.publish(settings, web_client(settings, client), client, str(event["user"]))


def mention(envelope: Envelope, settings: Settings, client: redis.Redis) -> None:
    """`@app now [#channel] [7d]` posts a digest in the channel; anything else is logged."""
    event = envelope.get("event") or {}
    words = MENTION.sub("", str(event.get("text", ""))).split()
    if not words or words[0].lower() != "now":
        log_arrival(envelope, settings, client)
        return
    logger.info("digest asked for by %s", describe(envelope))
    reply = on_demand.answer(
        settings,
        client,
        args=words[1:],
        here=str(event.get("channel")),
        request=str(envelope.get("event_id")),
    )
    logger.info("%s: %s", envelope.get("event_id"), reply.text)
    if not reply.posted:
        tell(settings, str(event.get("channel")), str(event.get("ts")), reply.text)


def tell(settings: Settings, channel: str, thread: str, text: str) -> None:
    """Say why in the mention's thread; if even that fails, the log has it."""
    try:
        call(web_client(settings), "chat.postMessage", channel=channel, thread_ts=thread, text=text)
    except DigestsError as error:
        logger.warning("could not answer in %s: %s", channel, error)


def revoke(envelope: Envelope, settings: Settings, client: redis.Redis) -> None:
    event = envelope.get("event") or {}
    # tokens_revoked names the users whose tokens went; only a bot token stops deliveries.
    if event.get("type") == "tokens_revoked" and not (event.get("tokens") or {}).get("bot"):
        logger.info("received %s (user tokens only)", describe(envelope))
        return
    logger.warning("received %s: deliveries will not post until reinstalled", describe(envelope))
    if settings.slack_bot_token:
        mark_revoked(client, settings.slack_bot_token, reason=str(event.get("type")))


HANDLERS: dict[str, Handler] = {
    "app_mention": mention,
    "app_home_opened": home_opened,
    "app_uninstalled": revoke,
    "tokens_revoked": revoke,
}


def handle(envelope: Envelope, settings: Settings, client: redis.Redis) -> bool:
    """Run the handler for this event's type; returns whether there was one."""
    handler = HANDLERS.get((envelope.get("event") or {}).get("type", ""))
    if handler is None:
        logger.debug("ignored %s", describe(envelope))
        return False
    handler(envelope, settings, client)
    return True
