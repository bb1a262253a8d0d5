"""An OpenAI-compatible chat completions endpoint that answers from what it was sent, with
switches for what real endpoints do (errors, slowness, answers that are not completions)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Self

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.server import BackgroundServer
from sandbox.service import Service


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Faults:
    status: int | None = None  # answer this HTTP status instead
    delay: float = 0.0  # seconds before answering
    malformed: bool = False  # answer JSON that is no chat completion


@dataclass
class LLMStub(Service):
    """Serves `POST /v1/chat/completions` and Azure's deployment path on a loopback port."""

    port: int | None = None
    received: list[Received] = field(default_factory=list)
    faults: Faults = field(default_factory=Faults)

    def __post_init__(self) -> None:
        self.app = Starlette(
            routes=[
                Route("/v1/models", self.models),
                Route("/v1/chat/completions", self.complete, methods=["POST"]),
                Route(
                    "/openai/deployments/{name}/chat/completions", self.complete, methods=["POST"]
                ),
            ]
        )
        self.server = BackgroundServer(self.app, self.port)

    @property
    def url(self) -> str:
        """The base URL, as `LLM_API_URL` takes it."""
        return f"{self.server.url}/v1"

    def start(self, timeout: float = 10.0) -> Self:
        self.server.start(timeout)
        return self

    def stop(self) -> None:
        self.server.stop()

    async def models(self, request: Request) -> Response:
        """What OpenAI-compatible servers list; `scripts/dev` asks it to know the stub is up."""
        return JSONResponse({"object": "list", "data": [{"id": "stub", "object": "model"}]})

    async def complete(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        self.received.append(Received(request.url.path, dict(request.headers), body))
        if self.faults.delay:
            await asyncio.sleep(self.faults.delay)
        if self.faults.status:
            return JSONResponse({"error": {"message": "stub failure"}}, self.faults.status)
        if self.faults.malformed:
            return JSONResponse({"object": "list", "data": []})
        return JSONResponse(completion(body))


def completion(body: dict[str, Any]) -> dict[str, Any]:
    """A deterministic answer: how many lines the transcript had and who wrote them."""
    transcript = body["messages"][-1]["content"].partition("Messages:\n")[2].splitlines()
    people = sorted({line.partition(":")[0] for line in transcript if ": " in line})
    text = (
        f"• {len(transcript)} messages from {len(people)} people ({', '.join(people[:5])}).\n"
        "• The team decided to go with Postgres for the exports migration.\n"
        "• Open: the billing runbook and the rollback plan."
    )
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "model": body.get("model", "stub"),
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
    }
