"""`scripts/dev` runs the whole service against the sandbox, delivers a demo digest on beat's
schedule, says what is wrong when it cannot start, and leaves nothing running when stopped."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import httpx2
import pytest

from sandbox.dev import SHARED
from sandbox.redis_server import free_port
from tests.conftest import ROOT, wait_until
from tests.signed import SECRET, event_callback, signed_json

# What the dev environment must not inherit from the one running the tests.
INHERITED = ("REDIS_URL", "SLACK_BOT_TOKEN", "SLACK_API_URL", "SMTP_URL", "SCHEDULES_FILE")


def answers(url: str) -> bool:
    try:
        return httpx2.get(url, timeout=1).status_code == 200
    except httpx2.HTTPError:
        return False


def dev_environment(tmp_path: Path, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in INHERITED}
    return {**env, "DEV_MAIL_DIR": str(tmp_path / "mail"), **values}


def port_of(pattern: str, output: str) -> int:
    found = re.search(pattern, output)
    assert found is not None, f"{pattern!r} not in the output:\n{output}"
    return int(found.group(1))


def marked(marker: str) -> list[int]:
    """The processes whose environment holds `marker`: everything the dev stack started."""
    pids = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker.encode() in environ.read_bytes().split(b"\0"):
                pids.append(int(environ.parent.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return pids


def runs_posted(slack_url: str) -> list[str]:
    """The runs whose digests the sandbox received, from the posts' metadata."""
    posted: list[dict[str, Any]] = httpx2.get(f"{slack_url}/sandbox/posted", timeout=5).json()
    metadata = [p.get("metadata", {}) for p in posted]
    return [m["event_payload"]["run"] for m in metadata if m.get("event_type") == "digest_posted"]


@pytest.mark.timeout(300)
def test_dev_stack_delivers_a_demo_digest_on_schedule_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    mark = uuid.uuid4().hex
    env_file = tmp_path / "dev.env"
    env = dev_environment(
        tmp_path,
        PORT=str(port),
        SLACK_SIGNING_SECRET=SECRET,
        DIGESTS_DEV_TEST=mark,
        DEV_ENV_FILE=str(env_file),
    )
    output = tmp_path / "dev.log"
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
        wait_until(lambda: "==> ready" in output.read_text(), "scripts/dev never got ready", 120)
        shown = output.read_text()
        slack_port = port_of(r"http://127\.0\.0\.1:(\d+)/sandbox/posted", shown)
        smtp_port = port_of(r"SMTP_URL=smtp://127\.0\.0\.1:(\d+)\?tls=off", shown)
        llm_port = port_of(r"LLM_API_URL=http://127\.0\.0\.1:(\d+)/v1", shown)
        redis_port = port_of(
            r"Redis \(embedded, in memory\) at redis://127\.0\.0\.1:(\d+)/0", shown
        )
        assert f"http://127.0.0.1:{port}/schedules" in shown
        assert str(tmp_path / "mail") in shown
        assert f"Uvicorn running on http://127.0.0.1:{port} " in shown  # loopback only
        # The list comes after every process's banner, where it stays in view.
        ready = shown.index("==> ready")
        assert 0 < shown.index(" ready.") < ready and 0 < shown.index(" leads") < ready

        # A second terminal talks to this stack through the file it wrote.
        assert env_file.stat().st_mode & 0o777 == 0o600
        shared = sourced(env_file)
        assert set(shared) == set(SHARED)
        assert shared["SLACK_SIGNING_SECRET"] == SECRET
        assert shared["TRIGGER_TOKEN"] not in shown, "a made-up token was printed"
        # The status pages, with the credentials it made up and printed.
        login = re.search(rf"http://127\.0\.0\.1:{port}/  \(user (\S+), password (\S+)\)", shown)
        assert login, shown
        page = httpx2.get(f"http://127.0.0.1:{port}/", auth=(login[1], login[2]), timeout=10)
        assert page.status_code == 200 and "Engineering and company weekly" in page.text
        assert f"{login[1]}:{login[2]}" == shared["STATUS_AUTH"]
        other = {**env, **shared}
        status = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "digests"), "status", "eng-and-general"],
            cwd=ROOT,
            env=other,
            capture_output=True,
            text=True,
        )
        assert status.returncode == 0, status.stderr
        assert status.stdout.splitlines()[1].startswith("eng-and-general ")

        # The sample curl makes a new run each time it is run.
        [curl] = [
            line.split("trigger", 1)[1].strip() for line in shown.splitlines() if "curl " in line
        ]
        runs = []
        for _ in range(2):
            made = subprocess.run(["sh", "-c", curl], env=other, capture_output=True, text=True)
            runs.append(json.loads(made.stdout))
            time.sleep(1.1)  # its Idempotency-Key counts seconds
        assert [r["duplicate"] for r in runs] == [False, False]
        assert runs[0]["task_id"] != runs[1]["task_id"]

        # /digest, signed with the stack's secret; the worker's answer lands in the sandbox.
        asked = subprocess.run(
            [sys.executable, "-m", "sandbox.send", "/digest schedules"],
            cwd=ROOT,
            env=other,
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert asked.returncode == 0, asked.stderr
        assert asked.stdout.startswith("Working on `/digest schedules`…\n*Schedules*")
        assert "`eng-and-general`" in asked.stdout
        wait_until(lambda: "response_url " in output.read_text(), "the sandbox did not log it")
        mention = [sys.executable, "-m", "sandbox.send", "@Slack Digests now #eng 24h"]
        told = subprocess.run(mention, cwd=ROOT, env=other, capture_output=True, text=True)
        assert told.returncode == 0, told.stderr
        assert told.stdout.splitlines()[1].startswith("#eng digest, ")

        payload = event_callback("app_mention")
        body, headers = signed_json(payload)
        sent = httpx2.post(f"http://127.0.0.1:{port}/slack/events", content=body, headers=headers)
        assert sent.status_code == 200
        wait_until(
            lambda: f"received app_mention event {payload['event_id']}" in output.read_text(),
            "the worker never ran the event",
        )

        # Nobody triggers it: beat fires the every-minute demo schedule within a minute.
        slack_url = f"http://127.0.0.1:{slack_port}"
        # (At a multiple of five minutes `support-leads` fires too, maybe first.)
        wait_until(
            lambda: any(r.startswith("eng-and-general@") for r in runs_posted(slack_url)),
            "no demo digest was posted",
            150,
            every=0.2,
        )
        wait_until(lambda: list((tmp_path / "mail").glob("*.eml")), "no demo digest was mailed")
        eml = next((tmp_path / "mail").glob("*.eml")).read_bytes()
        mail = message_from_bytes(eml, policy=policy.default)
        assert mail["To"] == "team@example.com"
        assert str(mail["Subject"]).startswith("Engineering and company weekly")  # its title
        text = mail.get_body(("plain",))  # the demo schedule has `summarizer: llm`, stubbed
        assert text and "Summary (generated by a language model)" in text.get_content()
    finally:
        dev.send_signal(signal.SIGTERM)
        dev.wait(timeout=60)
    assert dev.returncode == 0, output.read_text()[-3000:]
    assert not env_file.exists()
    with pytest.raises(ProcessLookupError):
        os.killpg(dev.pid, 0)
    assert marked(f"DIGESTS_DEV_TEST={mark}") == [], "a process of the dev stack outlived it"
    for used in (port, redis_port, slack_port, smtp_port, llm_port):
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", used)) != 0, f"port {used} still answers"


def sourced(path: Path) -> dict[str, str]:
    """The variables a shell gets from `set -a; . FILE`."""
    script = f"set -a; . {shlex.quote(str(path))}; env -0"
    done = subprocess.run(["env", "-i", "sh", "-c", script], capture_output=True, check=True)
    pairs = [item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item]
    return {name: value for name, value in pairs if name not in ("PWD", "OLDPWD", "SHLVL", "_")}


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    "signum",
    [signal.SIGHUP, signal.SIGINT, None],
    ids=["terminal closed", "ctrl-c with its output piped", "its output pipe closed"],
)
def test_dev_stack_stops_every_process_when_its_output_goes(
    tmp_path: Path, signum: signal.Signals | None
) -> None:
    port = free_port()
    mark = uuid.uuid4().hex
    env = dev_environment(
        tmp_path, PORT=str(port), DIGESTS_DEV_TEST=mark, DEV_ENV_FILE=str(tmp_path / "env")
    )
    dev = subprocess.Popen(
        [str(ROOT / "scripts" / "dev")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        assert dev.stdout is not None
        for line in dev.stdout:  # as `| tee` reads it
            if line.startswith(b"==> ready"):
                break
        assert marked(f"DIGESTS_DEV_TEST={mark}"), "the stack never started"
        dev.stdout.close()  # the terminal, or tee, is gone
        if signum is None:
            answers(f"http://127.0.0.1:{port}/healthz")  # the web logs it: a write to the pipe
        else:
            dev.send_signal(signum)
        dev.wait(timeout=60)
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGKILL)
    wait_until(
        lambda: marked(f"DIGESTS_DEV_TEST={mark}") == [],
        "a process of the dev stack outlived it",
        30,
    )
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "the web still answers"


def run_dev(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "scripts" / "dev")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_bad_schedules_file_is_reported_before_anything_starts(tmp_path: Path) -> None:
    schedules = tmp_path / "schedules.yaml"
    schedules.write_text(
        'version: 1\nschedules:\n  - name: eng\n    cron: "0 25 * * *"\n    channels: ["#eng"]\n'
    )
    done = run_dev(dev_environment(tmp_path, SCHEDULES_FILE=str(schedules)))
    assert done.returncode == 1
    assert f"{schedules}:4: schedules[0] (eng).cron: '0 25 * * *'" in done.stderr
    assert "starting" not in done.stdout


def test_a_taken_port_is_named_with_how_to_pick_another(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_dev(dev_environment(tmp_path, PORT=str(port)))
    assert done.returncode == 1
    assert f"port {port} is taken" in done.stderr and "PORT=" in done.stderr
    assert "starting" not in done.stdout
