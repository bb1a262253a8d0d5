"""`POST /slack/interactions`: Slack's buttons and modals (`payload=` JSON in a form), verified
as `/slack/events` is, deduplicated on what was clicked, queued, then answered 200.

Slack does not retry an interaction, but people click twice: a click counts once for
`CLICK_DEDUPE_TTL` seconds, whatever its `action_ts`.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import orjson
from redis.exceptions import RedisError
from starlette.datastructures import State
from starlette.exceptions import HTTPException
from starlette.responses import Response

from jobs import keys
from jobs.queue import INTERACTION_TASK, Job
from webhook.verification import EMPTY, Incoming, SlackEndpoint, form_fields

logger = logging.getLogger(__name__)

HANDLED = ("block_actions", "view_submission")


def parse_payload(incoming: Incoming) -> dict[str, Any]:
    raw = form_fields(incoming).get("payload")
    if not raw:
        raise HTTPException(400, "interaction without a payload field")
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise HTTPException(400, "malformed JSON payload") from None
    if not isinstance(payload, dict):
        raise HTTPException(400, "the payload is not a JSON object")
    return payload


def identity(payload: dict[str, Any]) -> str:
    """What was clicked, by whom and where; the same for both clicks of a double click."""
    user = (payload.get("user") or {}).get("id", "")
    if payload.get("type") == "view_submission":
        view = payload.get("view") or {}
        parts = [user, "view", str(view.get("id", "")), str(view.get("hash", ""))]
    else:
        actions = payload.get("actions") or [{}]
        action = actions[0] if isinstance(actions[0], dict) else {}
        container = payload.get("container") or {}
        where = container.get("view_id") or container.get("message_ts") or ""
        parts = [user, str(action.get("action_id", "")), str(action.get("value", "")), str(where)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


async def answer(state: State, incoming: Incoming) -> Response:
    payload = parse_payload(incoming)
    kind = payload.get("type")
    if kind not in HANDLED:
        logger.info("ignored Slack interaction of type %r", kind)
        return EMPTY
    if not isinstance((payload.get("user") or {}).get("id"), str):
        raise HTTPException(400, "interaction without a user")
    payload.pop("token", None)  # the deprecated verification token
    job = Job(
        INTERACTION_TASK,
        [payload],
        f"({kind} from {payload['user']['id']})",
        dedupe_key=keys.interaction(identity(payload)),
        dedupe_ttl=keys.CLICK_DEDUPE_TTL,
    )
    try:
        await state.producer.enqueue(job)
    except (RedisError, OSError) as error:
        logger.error("could not enqueue an interaction: %s", type(error).__name__)
        raise HTTPException(503, "the queue is unavailable; try again") from None
    return EMPTY


slack_interactions = SlackEndpoint(answer)
