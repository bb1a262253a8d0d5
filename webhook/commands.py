"""`POST /slack/commands`: the `/digest` slash command, answered within Slack's 3 seconds."""

from __future__ import annotations

import logging

from redis.exceptions import RedisError
from starlette.datastructures import State
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from jobs.queue import COMMAND_TASK, Job
from jobs.slack.mrkdwn import escape
from jobs.slack.slash import USAGE, is_immediate, split
from webhook.verification import Incoming, SlackEndpoint, form_fields

logger = logging.getLogger(__name__)


def ephemeral(text: str) -> JSONResponse:
    """A reply only the person who typed the command sees."""
    return JSONResponse({"response_type": "ephemeral", "text": text})


def parse_form(incoming: Incoming) -> dict[str, str]:
    form = form_fields(incoming)
    missing = [name for name in ("command", "response_url") if not form.get(name)]
    if missing:
        raise HTTPException(400, f"slash command without {', '.join(missing)}")
    return form


async def answer(state: State, incoming: Incoming) -> Response:
    form = parse_form(incoming)
    text = form.get("text", "")
    if is_immediate(text):
        return ephemeral(USAGE)
    form.pop("token", None)
    name = escape(split(text)[0])  # echoed input can neither ping nor forge a link
    try:
        await state.producer.enqueue(Job(COMMAND_TASK, [form], f"('/digest {name}')"))
    except (RedisError, OSError) as error:
        logger.error("could not enqueue /digest %s: %s", name, type(error).__name__)
        return ephemeral("Slack Digests could not queue that just now. Try again in a minute.")
    return ephemeral(f"Working on `/digest {name}`…")


slack_commands = SlackEndpoint(answer)
