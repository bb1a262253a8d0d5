"""Calls to Slack's Web API, with every failure sorted into wait, retry, or give up, paced with
the other workers on the token, counted per method, and the cursor loop of paginated methods."""

from __future__ import annotations

import logging
import math
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field
from typing import Any, TypedDict
from urllib.error import URLError

import msgspec
import orjson
import redis
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from jobs.config import Settings
from jobs.errors import PermanentError, RateLimited, RetryableError
from jobs.slack.pacing import Pace

logger = logging.getLogger(__name__)

# Errors that a retry cannot fix, with what a person should do about them.
PERMANENT = {
    "channel_not_found": "channel {channel} does not exist, or the app cannot see it",
    "not_in_channel": "the app is not in {channel}: invite it with /invite @Slack Digests",
    "is_archived": "{channel} is archived",
    "invalid_auth": "Slack refused SLACK_BOT_TOKEN (invalid_auth): check the token",
    "not_authed": "no Slack token was sent: set SLACK_BOT_TOKEN",
    "token_revoked": "Slack revoked SLACK_BOT_TOKEN: reinstall the app and set the new token",
    "account_inactive": "the app's Slack account is deactivated: reinstall the app",
    "missing_scope": "the app lacks the scope {needed}: add it and reinstall the app",
    "ekm_access_denied": "the workspace's key management denies access to {channel}",
}
# `ok: false` errors that say Slack itself is struggling.
TRANSIENT = {"internal_error", "fatal_error", "service_unavailable", "request_timeout"}
# A 429 without a usable `Retry-After` waits this long; a longer one than the cap waits the cap
# (and the run's record keeps what Slack asked).
DEFAULT_RETRY_AFTER = 5.0
MAX_RETRY_AFTER = 300.0


class Reaction(TypedDict, total=False):
    name: str
    count: int


class SharedFile(TypedDict, total=False):
    id: str
    name: str
    title: str
    permalink: str


class HistoryMessage(TypedDict, total=False):
    """What the service reads of a message in a page of history or of a thread: the digest's
    fields, and the `metadata` by which delivery finds its own posts."""

    ts: str
    user: str
    text: str
    subtype: str
    bot_id: str
    thread_ts: str
    reply_count: int
    reply_users_count: int
    reactions: list[Reaction]
    files: list[SharedFile]
    metadata: dict[str, Any]


class Cursor(TypedDict, total=False):
    next_cursor: str


class HistoryPage(TypedDict, total=False):
    ok: bool
    error: str
    warning: str
    needed: str
    provided: str
    messages: list[HistoryMessage]
    has_more: bool
    response_metadata: Cursor


# Pages of these methods are decoded into `HistoryPage`s: msgspec skips every other field (a
# message's `blocks` above all) without making objects of them. Making and freeing those was
# a fifth of the time a digest of 100,000 messages takes.
PAGED = ("conversations.history", "conversations.replies")
PAGE = msgspec.json.Decoder(HistoryPage)


def history_page(url: str, body: str) -> HistoryPage | None:
    """The page a paged method answered, with only what the service reads of it; None for
    another method, or a body that is not such a page (a field of another type): `WebClient`
    parses that whole."""
    if not url.endswith(PAGED):
        return None
    try:
        return PAGE.decode(body)
    except msgspec.DecodeError:
        return None


@dataclass
class CallCounts:
    """What a client asked of Slack: calls per method (429s included), 429s per method, and
    the longest `Retry-After` Slack asked per method when it was past the cap."""

    calls: Counter[str] = field(default_factory=Counter)
    limited: Counter[str] = field(default_factory=Counter)
    capped: dict[str, float] = field(default_factory=dict)


class Client(WebClient):
    """A `WebClient` that counts its calls and, given a `Pace`, waits with the other workers."""

    def __init__(self, pace: Pace | None, **options: Any) -> None:
        super().__init__(**options)
        self.pace = pace
        self.counts = CallCounts()

    def _perform_urllib_http_request(self, *, url: str, args: dict[str, Any]) -> dict[str, Any]:
        """The response with its body parsed (a history page by `history_page`, the rest by
        orjson), which `WebClient` then uses as it is: a history page of 999 messages parses
        three times as fast as with `json`."""
        response: dict[str, Any] = super()._perform_urllib_http_request(url=url, args=args)
        body = response.get("body")
        page = history_page(url, body) if isinstance(body, str) else None
        if page is not None:
            response["parsed_body"] = page
        elif "parsed_body" not in response and isinstance(body, str) and body.startswith("{"):
            with suppress(orjson.JSONDecodeError):
                response["parsed_body"] = orjson.loads(body)
        return response


def web_client(settings: Settings, cache: redis.Redis | None = None, owner: str = "") -> Client:
    """A client with no retry handlers of its own: it waits out 429s with every worker on the
    token through `cache`, and gives a long wait back to the task as `RateLimited`."""
    if not settings.slack_bot_token:
        raise PermanentError("SLACK_BOT_TOKEN is not set: the digest cannot read Slack")
    token = settings.slack_bot_token
    pace = None if cache is None else Pace(cache, token, owner or uuid.uuid4().hex)
    return Client(pace, token=token, base_url=settings.slack_api_url, timeout=30, retry_handlers=[])


def call(
    client: WebClient, method: str, channel: str = "", label: str = "", **params: Any
) -> SlackResponse:
    """`client.api_call(method)`, raising `RateLimited`, `RetryableError` or `PermanentError`.

    `label` is how errors name the channel (`#eng`, as the schedule wrote it).
    """
    if channel:
        params["channel"] = channel
    params = {name: value for name, value in params.items() if value is not None}
    pace = client.pace if isinstance(client, Client) else None
    while True:
        with nullcontext() if pace is None else pace.turn(method):
            try:
                return send(client, method, params, label or channel)
            except RateLimited as limited:
                if pace is None:
                    raise
                pace.back_off(method, limited.retry_after)


def send(client: WebClient, method: str, params: dict[str, Any], label: str) -> SlackResponse:
    counts = client.counts if isinstance(client, Client) else None
    if counts is not None:
        counts.calls[method] += 1
    # Blocks and metadata are JSON structures: Slack takes them only in a JSON body.
    structured = any(isinstance(value, list | dict) for value in params.values())
    try:
        if structured:
            return client.api_call(method, json=params)
        return client.api_call(method, params=params)
    except SlackApiError as error:
        failure = classify(method, error, label)
    except (URLError, TimeoutError, ConnectionError) as error:
        raise RetryableError(f"{method}: {type(error).__name__}") from None
    if isinstance(failure, RateLimited) and counts is not None:
        counts.limited[method] += 1
        if failure.asked is not None and failure.asked > failure.retry_after:
            counts.capped[method] = max(failure.asked, counts.capped.get(method, 0.0))
    raise failure from None


def classify(method: str, error: SlackApiError, channel: str) -> PermanentError | RetryableError:
    response = error.response
    status = response.status_code
    if status == 429:
        headers = {name.lower(): value for name, value in response.headers.items()}
        return rate_limited(method, headers.get("retry-after"))
    if status >= 500:
        return RetryableError(f"{method}: Slack answered HTTP {status}")
    data = response.data if isinstance(response.data, dict) else {}
    code = str(data.get("error", "unknown_error"))
    if code in TRANSIENT:
        return RetryableError(f"{method}: {code}")
    if code in PERMANENT:
        message = PERMANENT[code].format(
            channel=channel or "the channel", needed=data.get("needed")
        )
        return PermanentError(f"{message} ({method}: {code})")
    return PermanentError(f"Slack refused {method}: {code}")


def rate_limited(method: str, header: str | None) -> RateLimited:
    """The wait a 429 calls for: Slack's `Retry-After` in seconds, capped; a default when it is
    missing or not a number."""
    try:
        asked: float | None = float(header or "")
    except ValueError:
        asked = None
    if asked is None or not math.isfinite(asked) or asked < 0:
        return RateLimited(method, DEFAULT_RETRY_AFTER)
    if asked > MAX_RETRY_AFTER:
        logger.warning(
            "Slack asked to wait %gs before %s; waiting %gs", asked, method, MAX_RETRY_AFTER
        )
    return RateLimited(method, min(asked, MAX_RETRY_AFTER), asked=asked)


def next_cursor(page: SlackResponse | dict[str, Any]) -> str | None:
    """Where the next page starts, or None after the last."""
    return (page.get("response_metadata") or {}).get("next_cursor") or None


def pages(
    client: WebClient, method: str, cursor: str | None = None, **params: Any
) -> Iterator[SlackResponse]:
    """Every page of a paginated method, from `cursor` (the first page when None) on."""
    while True:
        page = call(client, method, cursor=cursor, **params)
        yield page
        cursor = next_cursor(page)
        if cursor is None:
            return
