"""Real parts for the tests: a private redis-server, a real Celery worker, the ASGI app."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

# Nothing in this process may reach the machine's shared Redis: until a fixture hands out the
# private server, the default points at a port where nothing listens.
EXTERNAL_REDIS = os.environ.pop("REDIS_URL", None)
os.environ["REDIS_URL"] = "redis://127.0.0.1:1/0"

import pytest  # noqa: E402
import redis  # noqa: E402
import uvicorn  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from jobs.config import Settings  # noqa: E402
from sandbox.redis_server import RedisServer, free_port  # noqa: E402
from sandbox.service import terminate  # noqa: E402
from tests.signed import SECRET  # noqa: E402
from webhook.app import create_app  # noqa: E402

BOT_TOKEN = "xoxb-test-bot-token-123"
ROOT = Path(__file__).resolve().parent.parent


def environment(redis_url: str) -> dict[str, str]:
    return {
        "REDIS_URL": redis_url,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "LOG_LEVEL": "INFO",
    }


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    if EXTERNAL_REDIS:
        yield EXTERNAL_REDIS
        return
    with RedisServer() as server:
        yield server.url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return Settings.from_env(environment(redis_url))


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


class Child:
    """A child process whose output goes to a temporary log, kept for assertions.

    With `group`, it leads a process group of its own and `stop()` ends every member: for a shell's
    command line, whose programs outlive the shell that started them.
    """

    def __init__(self, prefix: str, group: bool = False) -> None:
        self.log_path = Path(tempfile.mkstemp(prefix=prefix, suffix=".log")[1])
        self.process: subprocess.Popen[bytes] | None = None
        self.group = group

    def spawn(self, command: list[str], env: dict[str, str]) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=self.group,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until(
        self, condition: Callable[[], object], what: str, timeout: float = 60.0, every: float = 0.1
    ) -> None:
        """`wait_until`, but failing at once if the child exits first; either failure says `what`
        and shows the log's tail."""

        def holds() -> bool:
            if condition():
                return True
            if self.process and self.process.poll() is not None:
                pytest.fail(f"{what}; it exited, having logged:\n{self.log()[-3000:]}")
            return False

        wait_until(holds, lambda: f"{what}; it logged:\n{self.log()[-2500:]}", timeout, every)

    def stop(self) -> None:
        """Stop it as a PaaS does; the log stays."""
        if not self.process:
            return
        if not self.group:
            terminate(self.process, timeout=20)
            return
        # SIGTERM to the whole group, then wait until every member is gone (SIGKILL at last).
        deadline = time.monotonic() + 20
        self.signal_group(signal.SIGTERM)
        while self.group_alive():
            if time.monotonic() > deadline:
                self.signal_group(signal.SIGKILL)
            time.sleep(0.05)

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signum)

    def group_alive(self) -> bool:
        assert self.process is not None
        self.process.poll()  # reap the leader; orphaned members are reaped by init
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        return True


def children_of(pid: int) -> list[int]:
    """The processes `pid` started, as the kernel lists them; none once it has gone."""
    found = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in found.read_text().split()] if found.exists() else []


class Worker(Child):
    """A `celery -A jobs worker` process."""

    def __init__(
        self,
        redis_url: str,
        env: dict[str, str] | None = None,
        node: str = "",
        embedded_beat: bool = False,
    ) -> None:
        super().__init__("digests-worker-")
        self.redis_url = redis_url
        self.env = env or {}
        self.node = node  # its node name (`-n`), when two run on one host
        self.embedded_beat = embedded_beat  # `-B`: beat inside the worker

    def start(self) -> Worker:
        env = {**os.environ, **environment(self.redis_url), **self.env}
        command = [sys.executable, "-m", "celery", "-A", "jobs", "worker", "--concurrency=2"]
        command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        command += ["-n", self.node] if self.node else []
        command += ["-B"] if self.embedded_beat else []
        self.spawn(command, env)
        self.wait_for("ready.")
        return self

    def wait_for(self, text: str, count: int = 1, timeout: float = 30.0) -> None:
        self.wait_until(
            lambda: self.log().count(text) >= count,
            f"the worker never logged {text!r}",
            timeout,
            every=0.05,
        )

    def children(self) -> list[int]:
        """The pool's processes, which run the tasks."""
        return children_of(self.pid)

    def stop(self) -> None:
        super().stop()
        self.log_path.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def worker(redis_url: str) -> Iterator[Worker]:
    running = Worker(redis_url).start()
    yield running
    running.stop()


def wait_until(
    condition: Callable[[], object],
    why: str | Callable[[], str] = "the condition never held",
    timeout: float = 60.0,
    every: float = 0.02,
) -> None:
    """Return once `condition()` holds; else fail with `why`: a text, or a log (its tail shown)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(
                why if isinstance(why, str) else f"the condition never held:\n{why()[-3000:]}"
            )
        time.sleep(every)


def wait_for_state(client: TestClient, task_id: str, timeout: float = 30.0) -> dict[str, object]:
    """Poll `GET /tasks/{id}` until the task has finished."""
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, object] = client.get(f"/tasks/{task_id}").json()
        if body.get("state") in ("SUCCESS", "FAILURE"):
            return body
        if time.monotonic() > deadline:
            raise TimeoutError(f"task {task_id} still {body}")
        time.sleep(0.05)


class LiveServer:
    """The app served by uvicorn on a loopback port, for tests that need real HTTP."""

    def __init__(self, app: object) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")  # type: ignore[arg-type]
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
