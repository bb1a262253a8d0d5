"""Keep secrets out of everything we write down: logs and error reports."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

FILTERED = "[Filtered]"
MIN_SECRET = 8
# Slack tokens of every kind (bot, user, app, refresh, config), whether configured or not.
SLACK_TOKEN = re.compile(r"xox[a-z]-[A-Za-z0-9-]+")
SENSITIVE_HEADERS = frozenset(
    {"authorization", "cookie", "set-cookie", "x-slack-signature", "proxy-authorization"}
)


class Redactor:
    """Replaces known secret values and anything shaped like a Slack token."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret that contains another is replaced whole. Values too short
        # to be real secrets (a test's "s") would otherwise turn every line into confetti.
        self.secrets = sorted({s for s in secrets if len(s) >= MIN_SECRET}, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, FILTERED)
        return SLACK_TOKEN.sub(FILTERED, value)

    def data(self, value: Any) -> Any:
        """A copy of nested dicts, lists and strings with every secret replaced."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {
                key: FILTERED
                if isinstance(key, str) and key.lower() in SENSITIVE_HEADERS
                else self.data(item)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.data(item) for item in value]
        return value
