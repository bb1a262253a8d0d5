"""Error reporting to Sentry, with secrets and Slack message text scrubbed before sending."""

from __future__ import annotations

from typing import Any

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.starlette import StarletteIntegration
from sentry_sdk.types import Event, Hint

from jobs.config import Settings
from jobs.redaction import Redactor


def scrubber(settings: Settings) -> Any:
    """A `before_send` that drops request bodies and filters secrets from the rest."""
    redactor = Redactor(settings.secrets)

    def before_send(event: Event, hint: Hint) -> Event:
        request = event.get("request")
        if isinstance(request, dict):
            # Bodies carry Slack users' messages and the deprecated verification token.
            request.pop("data", None)
        scrubbed: Event = redactor.data(event)
        return scrubbed

    return before_send


def init_sentry(settings: Settings) -> bool:
    """Start reporting when `SENTRY_DSN` is set; returns whether it did."""
    if not settings.sentry_dsn:
        return False
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.sentry_environment,
        integrations=[StarletteIntegration(), CeleryIntegration()],
        before_send=scrubber(settings),
        max_request_body_size="never",
    )
    return True
