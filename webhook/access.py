"""One log line per request: method, route, status and duration; never bodies or headers."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobs import logs

logger = logging.getLogger("webhook.access")


class AccessLog:
    """ASGI middleware; the route is the template (`/tasks/{task_id}`), so ids stay out."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not logger.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees when the app fails before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "(no route)"
            elapsed = (time.perf_counter() - started) * 1000
            logs.info(logger, f"{scope['method']} {path} {status} {elapsed:.1f}ms")
