"""`GET /tasks/{id}`: a task's state as the result backend has it, never a 500 for a failure."""

from __future__ import annotations

import re
from typing import Any

import orjson
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from jobs import keys

TASK_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def task_view(task_id: str, meta: dict[str, Any] | None) -> dict[str, Any]:
    """The public view of a backend record: no tracebacks, no worker host names."""
    state: str = meta["status"] if meta else "PENDING"
    result = meta.get("result") if meta else None
    view: dict[str, Any] = {
        "id": task_id,
        "state": state,
        "progress": None,
        "result": None,
        "error": None,
    }
    if state == "SUCCESS":
        view["result"] = result
    elif state == "PROGRESS":
        view["progress"] = result
    elif state in ("FAILURE", "RETRY") and isinstance(result, dict):
        message = result.get("exc_message")
        if isinstance(message, list | tuple):
            message = " ".join(str(part) for part in message)
        view["error"] = f"{result.get('exc_type', 'Error')}: {message}"
    elif state == "UNKNOWN":
        view["error"] = "the result backend holds a record this service cannot read"
    return view


async def task_status(request: Request) -> JSONResponse:
    task_id = request.path_params["task_id"]
    if not TASK_ID.fullmatch(task_id):
        raise HTTPException(404, "unknown task id")
    try:
        async with request.app.state.redis.pipeline(transaction=False) as pipe:
            pipe.exists(keys.task(task_id))
            pipe.get(keys.task_result(task_id))
            issued, raw = await pipe.execute()
    except (RedisError, OSError):
        raise HTTPException(503, "Redis is unreachable") from None
    if not issued and raw is None:
        raise HTTPException(404, "unknown task id")
    return JSONResponse(task_view(task_id, decode(raw) if raw else None))


def decode(raw: bytes) -> dict[str, Any]:
    """A backend record, or an UNKNOWN one when it cannot be read as Celery writes it."""
    try:
        meta = orjson.loads(raw)
    except orjson.JSONDecodeError:
        meta = None
    if isinstance(meta, dict) and isinstance(meta.get("status"), str):
        return meta
    return {"status": "UNKNOWN", "result": None}
