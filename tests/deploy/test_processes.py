"""The commands, run: each starts against a private Redis as its platform starts it, and each
healthcheck passes against the process it watches (and fails without it); Flower keeps its pages
and API behind basic auth."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from sandbox.redis_server import RedisServer, free_port
from tests.conftest import ROOT, Child, children_of
from tests.deploy.helpers import (
    BIN,
    compose,
    compose_argv,
    healthcheck_argv,
    instruction,
    procfile,
)


@pytest.fixture
def private_redis() -> Iterator[str]:
    """A Redis of this test's own: these processes must not meet the suite's shared worker."""
    with RedisServer() as server:
        yield server.url


def process_environment(redis_url: str, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SENTRY_"))}
    for name in ("FLOWER_BASIC_AUTH", "FLOWER_UNAUTHENTICATED_API"):
        env.pop(name, None)
    return {
        **env,
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        "REDIS_URL": redis_url,
        "SCHEDULES_FILE": str(ROOT / "schedules.yaml"),
        **values,
    }


class Running(Child):
    """A command line in a process group of its own, stopped with everything it started."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        super().__init__("digests-deploy-", group=True)
        self.spawn(argv, env)

    def stop(self) -> None:
        super().stop()
        self.log_path.unlink(missing_ok=True)


def passes(argv: list[str], env: Mapping[str, str]) -> bool:
    return subprocess.run(argv, cwd=ROOT, env=dict(env), capture_output=True).returncode == 0


def descendants(pid: int) -> list[int]:
    found = children_of(pid)
    return found + [grandchild for child in found for grandchild in descendants(child)]


def spawned_workers(pid: int) -> int:
    count = 0
    for child in descendants(pid):
        try:
            count += b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
    return count


def test_the_web_command_serves_and_both_healthchecks_watch_it(private_redis: str) -> None:
    port = str(free_port())
    env = process_environment(private_redis, PORT=port, WEB_CONCURRENCY="2")
    image_check = json.loads(instruction("HEALTHCHECK").split(" CMD ", 1)[1])
    compose_check = healthcheck_argv(compose()["services"]["web"]["healthcheck"]["test"], env)
    assert not passes(image_check, env), "the healthcheck passes with nothing listening"
    web = Running(["sh", "-c", procfile()["web"]], env)
    try:
        web.wait_until(lambda: passes(image_check, env), "the image's HEALTHCHECK never passed")
        assert passes(compose_check, env)
        web.wait_until(lambda: spawned_workers(web.pid) == 2, "not 2 uvicorn workers")
    finally:
        web.stop()
    assert not passes(image_check, env)


def test_the_worker_command_answers_its_compose_healthcheck(private_redis: str) -> None:
    # In a container, HOSTNAME is the host name the worker's node name is made of.
    env = process_environment(private_redis, HOSTNAME=socket.gethostname())
    test = compose()["services"]["worker"]["healthcheck"]["test"]
    check = healthcheck_argv(test, env)
    # The control, run meanwhile: the same check for a node that does not exist fails.
    elsewhere = process_environment(private_redis, HOSTNAME="no-such-host")
    control = subprocess.Popen(healthcheck_argv(test, elsewhere), cwd=ROOT, env=elsewhere)
    worker = Running(["sh", "-c", procfile()["worker"]], env)
    try:
        worker.wait_until(lambda: "ready." in worker.log(), "the worker never became ready")
        worker.wait_until(lambda: passes(check, env), "the worker never answered the ping")
        assert control.wait() != 0, "the healthcheck passes for a worker that is not there"
    finally:
        worker.stop()


def test_the_beat_command_leads_and_passes_its_compose_healthcheck(private_redis: str) -> None:
    env = process_environment(private_redis)
    check = healthcheck_argv(compose()["services"]["beat"]["healthcheck"]["test"], env)
    assert not passes(check, env), "the healthcheck passes with no beat"
    beat = Running(["sh", "-c", procfile()["beat"]], env)
    try:
        beat.wait_until(lambda: passes(check, env), "beat never took the leader lock")
    finally:
        beat.stop()


def get(url: str, credentials: str | None = None) -> int:
    request = urllib.request.Request(url)
    if credentials:
        token = base64.b64encode(credentials.encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code


def test_flower_refuses_to_start_without_basic_auth(private_redis: str) -> None:
    env = process_environment(private_redis, FLOWER_PORT=str(free_port()))
    argv = compose_argv(compose()["services"]["flower"]["command"], env)
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "FLOWER_BASIC_AUTH" in result.stderr


def test_flowers_api_and_pages_refuse_unauthenticated_calls(private_redis: str) -> None:
    port = str(free_port())
    env = process_environment(private_redis, FLOWER_PORT=port, FLOWER_BASIC_AUTH="ops:s3cret")
    check = healthcheck_argv(compose()["services"]["flower"]["healthcheck"]["test"], env)
    flower = Running(compose_argv(compose()["services"]["flower"]["command"], env), env)
    try:
        flower.wait_until(lambda: passes(check, env), "Flower's healthcheck never passed")
        base = f"http://127.0.0.1:{port}"
        assert get(f"{base}/api/tasks") == 401
        assert get(f"{base}/api/tasks", "ops:wrong") == 401
        assert get(f"{base}/") == 401
        assert get(f"{base}/api/tasks", "ops:s3cret") == 200
    finally:
        flower.stop()
