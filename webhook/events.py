"""`POST /slack/events`: verify, deduplicate on `event_id`, enqueue, then answer 200."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from redis.exceptions import RedisError
from starlette.datastructures import State
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from jobs import keys
from jobs.queue import EVENT_TASK, Job, Producer
from webhook.verification import EMPTY, Incoming, SlackEndpoint

logger = logging.getLogger(__name__)


def parse_json(incoming: Incoming) -> dict[str, Any]:
    if not incoming.content_type().startswith(b"application/json"):
        raise HTTPException(400, "expected Content-Type: application/json")
    try:
        payload = orjson.loads(incoming.body)
    except orjson.JSONDecodeError:
        raise HTTPException(400, "malformed JSON body") from None
    if not isinstance(payload, dict):
        raise HTTPException(400, "the JSON body is not an object")
    return payload


async def answer(state: State, incoming: Incoming) -> Response:
    payload = parse_json(incoming)
    kind = payload.get("type")
    if kind == "event_callback":
        return await accept_event(state.producer, incoming, payload)
    if kind == "url_verification":
        challenge = payload.get("challenge")
        if not isinstance(challenge, str):
            raise HTTPException(400, "url_verification without a challenge")
        return JSONResponse({"challenge": challenge})
    if kind == "app_rate_limited":
        logger.warning(
            "Slack is rate-limiting events for team %s (minute %s): more than 30,000 an hour",
            payload.get("team_id"),
            payload.get("minute_rate_limited"),
        )
    else:
        logger.info("ignored Slack payload of type %r", kind)
    return EMPTY


slack_events = SlackEndpoint(answer)


async def accept_event(producer: Producer, incoming: Incoming, payload: dict[str, Any]) -> Response:
    event_id = payload.get("event_id")
    event = payload.get("event")
    if not isinstance(event_id, str) or not event_id or not isinstance(event, dict):
        raise HTTPException(400, "event_callback without an event_id and an event")
    payload.pop("token", None)  # the deprecated verification token: nothing downstream needs it
    try:
        enqueued = await producer.enqueue(
            Job(
                EVENT_TASK,
                [payload],
                f"({event.get('type')!r} event {event_id})",
                dedupe_key=keys.event(event_id),
            )
        )
    except (RedisError, OSError) as error:
        logger.error("could not enqueue event %s: %s", event_id, type(error).__name__)
        raise HTTPException(503, "the queue is unavailable; Slack will retry") from None
    retry = incoming.header(b"x-slack-retry-num")
    if retry:
        logger.info(
            "Slack retry %s (%s) of event %s: %s",
            retry,
            incoming.header(b"x-slack-retry-reason"),
            event_id,
            "already accepted" if enqueued.duplicate else "accepted now",
        )
    return EMPTY
