"""Reading task messages back out of the queue, as a worker's kombu reads them."""

from __future__ import annotations

import base64
import json
from typing import Any


def task_args(raw: bytes | str) -> list[Any]:
    """A queued message's positional task arguments, its body decoded by its `body_encoding`
    (our producers write text, `utf-8`; Celery's own publish writes `base64`)."""
    message = json.loads(raw)
    body = message["body"]
    if message["properties"]["body_encoding"] == "base64":
        body = base64.b64decode(body)
    args: list[Any] = json.loads(body)[0]
    return args
