"""The ASGI application: Slack's requests in, durable tasks out, nothing slow in between."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from jobs.config import Settings, get_settings
from jobs.connections import async_redis
from jobs.queue import Producer
from jobs.scheduling.file import SchedulesFile
from webhook.access import AccessLog
from webhook.commands import slack_commands
from webhook.events import slack_events
from webhook.health import healthz, readyz
from webhook.interactions import slack_interactions
from webhook.pages import schedule_page, status_page
from webhook.schedules import schedules_status
from webhook.tasks import task_status
from webhook.tick import tick_route
from webhook.triggers import trigger
from webhook.unsubscribe import unsubscribe_link
from webhook.verification import Verifier


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, exc.status_code, headers=exc.headers)


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the app for these settings (the environment's by default)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Everything imported so far lives as long as the process: keep it out of the
        # collector's full passes, which otherwise stall every request for milliseconds.
        gc.freeze()
        client = async_redis(settings)
        app.state.redis = client
        app.state.producer = Producer(client)
        yield
        await client.aclose()

    app = Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/slack/commands", slack_commands, methods=["POST"]),
            Route("/slack/interactions", slack_interactions, methods=["POST"]),
            Route("/triggers/{name}", trigger, methods=["POST"]),
            Route("/tick", tick_route, methods=["POST"]),
            Route("/tasks/{task_id}", task_status, methods=["GET"]),
            Route("/schedules", schedules_status, methods=["GET"]),
            Route("/", status_page, methods=["GET"], name="status_page"),
            Route("/schedules/{name}", schedule_page, methods=["GET"], name="schedule_page"),
            Route("/unsubscribe", unsubscribe_link, methods=["GET", "POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error},
        middleware=[Middleware(AccessLog)],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.verifier = Verifier(settings.slack_signing_secret)
    app.state.schedules = SchedulesFile(settings.schedules_file)
    return app
