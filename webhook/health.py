"""`/healthz` says the process is alive; `/readyz` says it can reach Redis."""

from __future__ import annotations

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    try:
        await request.app.state.redis.ping()
    except (RedisError, OSError):
        return JSONResponse({"status": "unavailable", "error": "Redis is unreachable"}, 503)
    return JSONResponse({"status": "ready"})
