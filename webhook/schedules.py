"""`GET /schedules`, and the schedules file as the web process reads it: parsed once per change."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from jobs import status


class SchedulesFile:
    """The file as `status.Loaded`, parsed again only when its mtime, size or inode changes.

    Requests read it on every trigger and status call; parsing YAML and cron each time would
    cost milliseconds, a `stat` costs microseconds.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stamp: tuple[int, int, int] | None = None
        self.loaded: status.Loaded | None = None

    def read(self) -> status.Loaded:
        try:
            info = self.path.stat()
            stamp: tuple[int, int, int] | None = (info.st_mtime_ns, info.st_size, info.st_ino)
        except OSError:
            stamp = None  # a missing file is read (and reported) every time until it exists
        if self.loaded is None or stamp is None or stamp != self.stamp:
            self.loaded = status.read_file(self.path)
            self.stamp = stamp
        return self.loaded


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
