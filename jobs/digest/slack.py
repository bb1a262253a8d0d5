"""Calls to Slack's Web API, with every failure sorted into wait, retry, or give up."""

from __future__ import annotations

from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from jobs.config import Settings

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


class DigestFailed(Exception):
    """A permanent failure; the message says what a person can do about it."""


class SlackUnavailable(Exception):
    """A failure that may pass: Slack 5xx, timeouts, dropped connections."""


class RateLimited(Exception):
    """Slack answered 429; the work resumes after `retry_after` seconds."""

    def __init__(self, method: str, retry_after: float) -> None:
        super().__init__(f"Slack rate-limited {method}; retry after {retry_after:g}s")
        self.retry_after = retry_after


def web_client(settings: Settings) -> WebClient:
    """A client with no retry handlers of its own: a 429 must never sleep inside a worker."""
    if not settings.slack_bot_token:
        raise DigestFailed("SLACK_BOT_TOKEN is not set: the digest cannot read Slack")
    return WebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        timeout=30,
        retry_handlers=[],
    )


def call(
    client: WebClient, method: str, channel: str = "", label: str = "", **params: Any
) -> SlackResponse:
    """`client.api_call(method)`, raising `RateLimited`, `SlackUnavailable` or `DigestFailed`.

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
        raise SlackUnavailable(f"{method}: {type(error).__name__}") from None


def classify(method: str, error: SlackApiError, channel: str) -> Exception:
    response = error.response
    status = response.status_code
    if status == 429:
        headers = {name.lower(): value for name, value in response.headers.items()}
        return RateLimited(method, float(headers.get("retry-after", 1)))
    if status >= 500:
        return SlackUnavailable(f"{method}: Slack answered HTTP {status}")
    data = response.data if isinstance(response.data, dict) else {}
    code = str(data.get("error", "unknown_error"))
    if code in TRANSIENT:
        return SlackUnavailable(f"{method}: {code}")
    if code in PERMANENT:
        message = PERMANENT[code].format(
            channel=channel or "the channel", needed=data.get("needed")
        )
        return DigestFailed(f"{message} ({method}: {code})")
    return DigestFailed(f"Slack refused {method}: {code}")
