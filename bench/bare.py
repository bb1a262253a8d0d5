"""The baseline: a bare Starlette route that answers without reading the body."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def ok(request: Request) -> Response:
    return Response()


app = Starlette(routes=[Route("/slack/events", ok, methods=["POST"])])
