"""An ASGI app served over real HTTP on a loopback port from a background thread: the Slack
simulator in tests, and any app a test needs to reach through a real client library."""

from __future__ import annotations

import threading
import time

import uvicorn
from starlette.types import ASGIApp

from sandbox.redis_server import free_port
from sandbox.service import Service

HOST = "127.0.0.1"


class BackgroundServer(Service):
    """uvicorn running `app` on `port` (a free one by default) while the `with` block lasts."""

    def __init__(self, app: ASGIApp, port: int | None = None) -> None:
        self.port = port or free_port()
        config = uvicorn.Config(
            app, host=HOST, port=self.port, log_level="warning", access_log=False, lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"uvicorn-{self.port}")
        self.thread.daemon = True

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 10.0) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError(f"uvicorn could not serve on {self.url}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"uvicorn did not start on {self.url} within {timeout:g}s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout=10)
