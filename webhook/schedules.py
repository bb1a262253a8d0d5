"""`GET /schedules`: every schedule's state, from the file and Redis."""

from __future__ import annotations

from datetime import UTC, datetime

from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from jobs.scheduling import status


async def schedules_status(request: Request) -> JSONResponse:
    """200 with every schedule and the file's errors (a broken file is shown, not a 500);
    503 when Redis, which holds the last and skipped slots and the outcomes, is unreachable."""
    loaded = request.app.state.schedules.read()
    try:
        async with request.app.state.redis.pipeline(transaction=False) as pipe:
            status.queue_reads(pipe, loaded)
            replies = await pipe.execute()
    except (RedisError, OSError):
        raise HTTPException(503, "Redis is unreachable") from None
    return JSONResponse(status.report(loaded, replies, datetime.now(UTC)))
