"""Calls to Slack's Web API, with every failure sorted into wait, retry, or give up, and the
cursor loop of its paginated methods."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from jobs.config import Settings
from jobs.errors import PermanentError, RateLimited, RetryableError

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


def web_client(settings: Settings) -> WebClient:
    """A client with no retry handlers of its own: a 429 must never sleep inside a worker."""
    if not settings.slack_bot_token:
        raise PermanentError("SLACK_BOT_TOKEN is not set: the digest cannot read Slack")
    return WebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        timeout=30,
        retry_handlers=[],
    )


def call(
    client: WebClient, method: str, channel: str = "", label: str = "", **params: Any
) -> SlackResponse:
    """`client.api_call(method)`, raising `RateLimited`, `RetryableError` or `PermanentError`.

    `label` is how errors name the channel (`#eng`, as the schedule wrote it).
    """
    if channel:
        params["channel"] = channel
    params = {name: value for name, value in params.items() if value is not None}
    # Blocks and metadata are JSON structures: Slack takes them only in a JSON body.
    structured = any(isinstance(value, list | dict) for value in params.values())
    try:
        if structured:
            return client.api_call(method, json=params)
        return client.api_call(method, params=params)
    except SlackApiError as error:
        raise classify(method, error, label or channel) from None
    except (URLError, TimeoutError, ConnectionError) as error:
        raise RetryableError(f"{method}: {type(error).__name__}") from None


def classify(method: str, error: SlackApiError, channel: str) -> PermanentError | RetryableError:
    response = error.response
    status = response.status_code
    if status == 429:
        headers = {name.lower(): value for name, value in response.headers.items()}
        return RateLimited(method, float(headers.get("retry-after", 1)))
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


def next_cursor(page: SlackResponse) -> str | None:
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
