"""`POST /tick`: what one beat tick does, for an external scheduler (`digests tick` does the
same from a shell); with beat, triggers and other ticks, still one run per slot."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from jobs.config import Settings
from jobs.connections import sync_redis
from jobs.scheduling.slots import Schedule
from jobs.scheduling.tick import Ticked, tick
from webhook.triggers import authenticate

logger = logging.getLogger(__name__)


async def tick_route(request: Request) -> JSONResponse:
    """200 with what was queued and skipped; 401 without the bearer token; 503 when the file
    has never loaded or Redis is unreachable."""
    state = request.app.state
    authenticate(request, state.settings.trigger_token)
    loaded = state.schedules.read()
    if loaded.errors and not loaded.schedules:
        raise HTTPException(503, f"the schedules file does not load: {'; '.join(loaded.errors)}")
    schedules = list(loaded.schedules.values())
    try:
        ticked = await run_in_threadpool(ticking, state.settings, schedules)
    except (RedisError, OSError) as error:
        logger.error("tick could not reach Redis: %s", type(error).__name__)
        raise HTTPException(503, "the queue is unavailable; try again") from None
    return JSONResponse(ticked.as_dict())


def ticking(settings: Settings, schedules: list[Schedule]) -> Ticked:
    client = sync_redis(settings)
    try:
        return tick(client, schedules, datetime.now(UTC))
    finally:
        client.close()
