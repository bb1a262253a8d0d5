"""Digests asked for in Slack (`/digest now`, `@app now`): one channel, posted where asked."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis
from slack_sdk import WebClient

from jobs.config import Settings
from jobs.digest.deliver import post
from jobs.digest.ledger import Ledger
from jobs.digest.model import Window
from jobs.digest.pipeline import Scope, build
from jobs.digest.render.blocks import slack_messages
from jobs.errors import PermanentError, RetryableError
from jobs.scheduling.slots import format_duration, parse_duration
from jobs.slack.api import web_client
from jobs.slack.directory import CHANNEL_ID, Directory
from jobs.slack.mrkdwn import escape
from jobs.slack.revocation import ensure_not_revoked

DEFAULT_WINDOW = timedelta(days=7)
# A channel as Slack escapes it in commands and mentions (`<#C0123|eng>`), or as typed.
CHANNEL = re.compile(r"<#([CG][A-Z0-9]+)(?:\|[^>]*)?>|(#[a-z0-9._-]+)")


def parse(args: list[str], here: str) -> tuple[str, timedelta]:
    """The channel (this one unless named) and the look-back (7d unless given) of a request."""
    channel, window = here, DEFAULT_WINDOW
    for arg in args:
        found = CHANNEL.fullmatch(arg)
        if found:
            channel = found.group(1) or found.group(2)
            continue
        found_window = parse_duration(arg)
        if found_window is None:
            raise PermanentError(f"`{arg}` is neither a #channel nor a look-back like 7d or 24h")
        window = found_window
    return channel, window


def digest_now(
    client: WebClient,
    cache: redis.Redis,
    token: str,
    *,
    channel: str,
    window: timedelta,
    post_to: str,
    request: str,
) -> str:
    """Build the digest of `channel` over the last `window` and post it in `post_to`.

    `request` names the asking (a trigger or event id), so a retried request posts once.
    """
    directory = Directory(client, cache)
    channel = directory.channel_id(channel)
    name = directory.channel_names([channel])[channel]
    end = datetime.now(UTC)
    built = build(client, cache, Scope(f"#{name} digest", (channel,), Window(end - window, end)))
    ensure_not_revoked(cache, token)
    run = f"on-demand@{request}"
    ledger = Ledger(cache, run)
    parts = slack_messages(built.digest, built.names)
    return post(client, post_to, parts, run, ledger, since=datetime.now().timestamp() - 600)


@dataclass(frozen=True)
class Answer:
    text: str  # for the person who asked
    posted: bool


def answer(
    settings: Settings, cache: redis.Redis, *, args: list[str], here: str, request: str
) -> Answer:
    """Do the request and say how it went, in words for the person who asked."""
    try:
        channel, window = parse(args, here)
        digest_now(
            web_client(settings, cache),
            cache,
            settings.slack_bot_token or "",
            channel=channel,
            window=window,
            post_to=here,
            request=request,
        )
    except PermanentError as error:
        # The error may quote what was typed: inert, as the web's immediate answer is.
        return Answer(f"No digest: {escape(str(error))}", posted=False)
    except RetryableError:
        return Answer("Slack is busy right now; ask again in a minute.", posted=False)
    shown = f"<#{channel}>" if CHANNEL_ID.fullmatch(channel) else channel
    return Answer(f"Posted the digest of {shown} for the last {format_duration(window)}.", True)
