"""Logging set-up: text or JSON lines, with secrets filtered from every record."""

from __future__ import annotations

import json
import logging

from jobs.config import Settings
from jobs.redaction import Redactor


class RedactingFormatter(logging.Formatter):
    """Formats as text or one JSON object a line, then filters secrets from the result."""

    def __init__(self, redactor: Redactor, as_json: bool) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")
        self.redactor = redactor
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        if not self.as_json:
            return self.redactor.text(super().format(record))
        line = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return self.redactor.text(json.dumps(line))


def configure_logging(settings: Settings) -> None:
    """Send the root logger's records to stderr, in the configured level and format."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        RedactingFormatter(Redactor(settings.secrets), as_json=settings.log_format == "json")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
