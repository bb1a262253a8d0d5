"""The `digests` command line as a person meets it: real processes, a real Redis, a real worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from jobs.queue import QUEUE
from sandbox.redis_server import free_port
from sandbox.slack import SlackSimulator
from tests.conftest import ROOT, environment, wait_until

NAME = "eng-daily"
SCHEDULES = f"""version: 1
schedules:
  - name: {NAME}
    cron: "0 9 * * *"
    channels: ["#eng"]
    deliver: {{slack: ["#eng-digest"]}}
"""


def digests(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "jobs", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)


@pytest.fixture
def schedules(tmp_path: Path) -> Path:
    path = tmp_path / "schedules.yaml"
    path.write_text(SCHEDULES)
    return path


@pytest.mark.parametrize("command", ["run", "trigger", "preview", "status"])
def test_with_redis_down_a_command_says_so_in_one_line(schedules: Path, command: str) -> None:
    port = free_port()  # nothing listens there
    env = {
        **os.environ,
        "REDIS_URL": f"redis://:hunter2-secret@127.0.0.1:{port}/0",
        "SCHEDULES_FILE": str(schedules),
        "SLACK_BOT_TOKEN": "xoxb-test-token",
        "SLACK_API_URL": f"http://127.0.0.1:{port}/api/",
    }
    done = digests(command, NAME, env=env)
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith(f"digests: cannot reach Redis at redis://:***@127.0.0.1:{port}/0 (")
    assert line.endswith("start it, or set REDIS_URL to the Redis the service uses")
    assert "hunter2" not in done.stdout + done.stderr


@pytest.mark.parametrize("command", ["run", "trigger"])
def test_with_no_worker_a_run_is_not_queued_and_it_says_how_to_start_one(
    redis_url: str, schedules: Path, command: str
) -> None:
    url = redis_url.rsplit("/", 1)[0] + "/8"  # no worker consumes this database
    client = redis.Redis.from_url(url)
    client.delete(QUEUE)
    env = {**os.environ, **environment(url), "SCHEDULES_FILE": str(schedules)}
    # Before, it printed PENDING and waited forever: the deadline only bounds a failure.
    done = subprocess.run(
        [sys.executable, "-m", "jobs", command, NAME],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    queued = client.llen(QUEUE)
    client.close()
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith(f"digests: no worker answers on {url}: start one with ")
    assert "`celery -A jobs worker` (or run scripts/dev)" in line
    assert queued == 0


def test_ctrl_c_ends_a_command_with_one_line(redis_url: str, schedules: Path) -> None:
    with SlackSimulator() as slack:
        slack.slow("conversations.history", 5, times=1)  # SIGINT comes well within it
        env = {
            **os.environ,
            **environment(redis_url),
            "SCHEDULES_FILE": str(schedules),
            "SLACK_API_URL": slack.url,
            "SLACK_BOT_TOKEN": slack.token,
        }
        preview = subprocess.Popen(
            [sys.executable, "-m", "jobs", "preview", NAME],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_until(lambda: slack.calls["conversations.history"] > 0, "preview never read Slack")
        preview.send_signal(signal.SIGINT)
        _, err = preview.communicate(timeout=60)
    assert preview.returncode == 130
    assert err == "digests: interrupted\n"
