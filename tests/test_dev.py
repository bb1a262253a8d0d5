"""`scripts/dev` runs the whole service on an embedded Redis and stops all of it."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx2

from sandbox.redis_server import free_port
from tests.conftest import ROOT
from tests.slack import SECRET, event_callback, signed_json


def wait_until(condition: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.1)


def answers(url: str) -> bool:
    try:
        return httpx2.get(url, timeout=1).status_code == 200
    except httpx2.HTTPError:
        return False


def test_dev_stack_receives_an_event_and_stops_cleanly() -> None:
    port = free_port()
    env = {**os.environ, "PORT": str(port), "SLACK_SIGNING_SECRET": SECRET}
    env.pop("REDIS_URL")
    output = Path(tempfile.mkstemp(prefix="digests-dev-", suffix=".log")[1])
    with output.open("wb") as log:
        dev = subprocess.Popen(
            [str(ROOT / "scripts" / "dev")],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(lambda: answers(f"http://127.0.0.1:{port}/readyz"), "web never ready")
        payload = event_callback("app_mention")
        body, headers = signed_json(payload)
        sent = httpx2.post(f"http://127.0.0.1:{port}/slack/events", content=body, headers=headers)
        assert sent.status_code == 200
        wait_until(
            lambda: f"received app_mention event {payload['event_id']}" in output.read_text(),
            "the worker never ran the event",
        )
        redis_port = re.search(
            r"Redis \(embedded, in memory\) at redis://127.0.0.1:(\d+)/0", output.read_text()
        )
        assert redis_port is not None
    finally:
        dev.send_signal(signal.SIGTERM)
        dev.wait(timeout=60)
    try:
        os.killpg(dev.pid, 0)
        left = True
    except ProcessLookupError:
        left = False
    assert not left, "a process of the dev stack outlived it"
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", int(redis_port.group(1)))) != 0, "Redis still runs"
    output.unlink()
