"""Deliver: post a rendered digest to Slack channels and mail it, each exactly once.

Every Slack post carries metadata naming its run, destination and part. Before posting, a
delivery asks the ledger whether that part already landed; when the ledger says an earlier try
began posting there, it also asks the channel: a task killed between posting and recording
finds its post and does not post again, and a first try asks Slack nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from email.message import EmailMessage
from typing import Any

from slack_sdk import WebClient
from slack_sdk.web import SlackResponse

from jobs.config import Settings
from jobs.digest.ledger import Ledger
from jobs.digest.render.blocks import SlackMessage
from jobs.digest.smtp import Mailer
from jobs.errors import MailDeferred, PermanentError, RetryableError
from jobs.slack.api import call, pages

EVENT_TYPE = "digest_posted"
SENT = "sent"
# A recipient who unsubscribed from the schedule is not mailed; that is not a failure.
UNSUBSCRIBED = "unsubscribed"
# The ledger's mark that a try began posting to a channel: only then can a post be unrecorded.
TRIED = "tried:slack:"


def metadata(run: str, channel: str, part: int) -> dict[str, Any]:
    return {
        "event_type": EVENT_TYPE,
        "event_payload": {"run": run, "channel": channel, "part": part},
    }


def is_ours(message: dict[str, Any], run: str, channel: str, part: int) -> bool:
    found = message.get("metadata") or {}
    return found.get("event_type") == EVENT_TYPE and found.get("event_payload") == {
        "run": run,
        "channel": channel,
        "part": part,
    }


def find_post(client: WebClient, channel: str, run: str, since: float) -> str | None:
    """The ts of this run's first part in the channel's history since the run began."""
    history = pages(
        client,
        "conversations.history",
        channel=channel,
        oldest=f"{since - 60:.6f}",
        include_all_metadata=True,
        limit=200,
    )
    return find(history, run, channel, 0)


def find_reply(client: WebClient, channel: str, parent: str, run: str, part: int) -> str | None:
    """The ts of a later part among the replies to the first."""
    replies = pages(
        client,
        "conversations.replies",
        channel=channel,
        ts=parent,
        include_all_metadata=True,
        limit=200,
    )
    return find(replies, run, channel, part)


def find(found: Iterable[SlackResponse], run: str, channel: str, part: int) -> str | None:
    """The ts of the part among the pages' messages; the pages are read only that far."""
    for page in found:
        for message in page["messages"]:
            if is_ours(message, run, channel, part):
                return str(message["ts"])
    return None


def post(
    client: WebClient,
    channel: str,
    parts: list[SlackMessage],
    run: str,
    ledger: Ledger,
    since: float,
) -> str:
    """Post every part not yet posted (the first to the channel, the rest in its thread)."""
    done = ledger.entries(f"slack:{channel}:")
    # Only an earlier try that began posting can have posted parts this one has no record of.
    tried = ledger.get(TRIED + channel) is not None
    parent = done.get("0") or (find_post(client, channel, run, since) if tried else None)
    resumed = tried and parent is not None
    if not tried:
        ledger.put(TRIED + channel, "1")  # before the first post, so a crash after it searches
    for part, message in enumerate(parts):
        ts = done.get(str(part))
        if ts is not None:
            continue
        if resumed:
            ts = parent if part == 0 else find_reply(client, channel, str(parent), run, part)
        if ts is None:
            answer = call(
                client,
                "chat.postMessage",
                channel=channel,
                text=message.text,
                blocks=message.blocks,
                thread_ts=parent if part else None,
                metadata=metadata(run, channel, part),
                unfurl_links=False,
                unfurl_media=False,
            )
            ts = str(answer["ts"])
        ledger.put(f"slack:{channel}:{part}", ts)
        if part == 0:
            parent = ts
    assert parent is not None
    return parent


def send_mail(
    settings: Settings,
    recipients: list[str],
    render: Callable[[str], EmailMessage],
    ledger: Ledger,
) -> dict[str, str]:
    """Mail each recipient not yet recorded; return every recipient's outcome.

    A 5xx fails that recipient for good; a 4xx or a lost connection raises `MailDeferred`
    after the others were tried, so a retry sends only to those still owed.
    """
    outcomes = ledger.entries("email:")
    owed = [r for r in recipients if r not in outcomes]
    if not owed:
        return outcomes
    if settings.smtp is None or settings.email_from is None:
        for recipient in owed:
            outcomes[recipient] = "failed: SMTP_URL is not set, so email cannot be sent"
            ledger.put(f"email:{recipient}", outcomes[recipient])
        return outcomes
    deferred: list[str] = []
    with Mailer(settings.smtp) as mailer:
        for recipient in owed:
            try:
                mailer.send(render(recipient), recipient, settings.email_from)
            except RetryableError as error:
                deferred.append(f"{recipient}: {error}")
                continue
            except PermanentError as error:
                outcomes[recipient] = f"failed: {error}"
            else:
                outcomes[recipient] = SENT
            ledger.put(f"email:{recipient}", outcomes[recipient])
    if deferred:
        raise MailDeferred("; ".join(deferred))
    return outcomes
