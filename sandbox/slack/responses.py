"""Slack's `response_url`: where a worker posts the answer to a slash command, kept and logged so
that `/digest` can be tried against the sandbox."""

from __future__ import annotations

import threading
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response


def response_url(base: str, request: str) -> str:
    """The `response_url` of one request, under the simulator's `base` URL."""
    return f"{base.rstrip('/')}/sandbox/respond/{request}"


class Responses:
    """Every answer posted to `/sandbox/respond/{id}`, in order, as `{id, ...the JSON body}`."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    async def respond(self, request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return Response("invalid JSON", 400)
        if not isinstance(body, dict):
            return Response("expected a JSON object", 400)
        with self.lock:
            self.received.append({"id": request.path_params["id"], **body})
        # One line a response, as Slack would show it; the sandbox's text is made up.
        print(f"response_url {request.path_params['id']}: {body.get('text', '')}", flush=True)
        return Response("ok")

    async def show(self, request: Request) -> Response:
        with self.lock:
            shown = list(self.received)
        return Response(orjson.dumps(shown), media_type="application/json")
