"""`GET /schedules`, `digests status` and `/digest schedules`: one report, three ways to read it."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from starlette.testclient import TestClient

from jobs import keys
from jobs.config import Settings
from jobs.digest.ledger import RunRecord
from jobs.scheduling import status
from jobs.scheduling.file import SchedulesFile, load
from jobs.scheduling.slots import Schedule
from tests.conftest import ROOT, Worker, environment
from tests.http_sink import HttpSink
from tests.signed import command_form, signed_form
from webhook.app import create_app

SCHEDULES = """\
version: 1
defaults: {{deliver: {{slack: ["#eng-digest"]}}}}
schedules:
  - {{name: {weekly}, cron: "0 9 * * MON", timezone: Europe/Berlin, channels: ["#eng"]}}
  - {{name: {paused}, cron: "30 8 * * *", channels: ["#eng"], enabled: false}}
"""
DB = 5


STATUS_AUTH = "ops:correct horse battery"


@dataclass
class Board:
    """A schedules file, Redis state for it, and the environment the service reads them with."""

    weekly: str
    paused: str
    schedules: Path
    env: dict[str, str]

    def app(self, **env: str) -> TestClient:
        """The web app, its requests signed in with `STATUS_AUTH`."""
        login = base64.b64encode(STATUS_AUTH.encode()).decode()
        settings = Settings.from_env({**self.env, **env})
        return TestClient(create_app(settings), headers={"Authorization": f"Basic {login}"})

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "jobs", "status", *args]
        environ = {**os.environ, **self.env, **env}
        return subprocess.run(command, cwd=ROOT, env=environ, capture_output=True, text=True)


def record(schedule: Schedule, slot: datetime, status: str, **fields: Any) -> bytes:
    """A finished run's record as the ledger writes it to the history."""
    return orjson.dumps(
        {
            "run": f"{schedule.name}@{slot.isoformat()}",
            "schedule": schedule.name,
            "slot": slot.isoformat(),
            "manual": slot != schedule.latest_slot(slot),
            "status": status,
            "started": slot.timestamp(),
            "finished": slot.timestamp() + 5,
            "destinations": {"email:ana@example.com": "sent"},
            **fields,
        }
    )


@pytest.fixture(scope="module")
def board(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Board]:
    yield from board_of(redis_url, tmp_path_factory)


def board_of(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Board]:
    """Beat's last slot of `weekly` failed, a later manual run was delivered, and the slot
    before was skipped; a worker reads the same file, for `/digest schedules`."""
    suffix = uuid.uuid4().hex[:8]
    weekly, paused = f"weekly-{suffix}", f"paused-{suffix}"
    path = tmp_path_factory.mktemp("status") / "schedules.yaml"
    path.write_text(SCHEDULES.format(weekly=weekly, paused=paused))
    schedule = load(path)[weekly]
    last = schedule.latest_slot(datetime.now(UTC))
    skipped = schedule.previous_slot(last)
    url = redis_url.rsplit("/", 1)[0] + f"/{DB}"
    with redis.Redis.from_url(url) as client:
        client.set(keys.last_slot(weekly), last.isoformat())
        client.lpush(keys.skipped(weekly), skipped.isoformat())
        failed = record(
            schedule,
            last,
            "failed",
            error="the app is not in <!channel>",
            calls={"conversations.history": 3, "auth.test": 1},
            rate_limited={"conversations.history": 1},
            lateness=5.0,
        )
        manual = record(schedule, last + timedelta(hours=2), "delivered")
        client.lpush(keys.history(weekly), failed, manual)  # the manual run is the newest
    env = {**environment(url), "SCHEDULES_FILE": str(path), "STATUS_AUTH": STATUS_AUTH}
    worker = Worker(url, {"SCHEDULES_FILE": str(path)}).start()
    try:
        yield Board(weekly, paused, path, env)
    finally:
        worker.stop()


def test_schedules_shows_next_slots_last_slot_its_outcome_and_skipped_slots(board: Board) -> None:
    schedule = load(board.schedules)[board.weekly]
    with board.app() as client:
        answer = client.get("/schedules")
    assert answer.status_code == 200
    shown = answer.json()
    assert shown["errors"] == []
    weekly, paused = shown["schedules"]
    last = schedule.latest_slot(datetime.now(UTC))
    upcoming = schedule.next_slots(last, 3)
    assert weekly == {
        "name": board.weekly,
        "cron": "0 9 * * MON",
        "timezone": "Europe/Berlin",
        "enabled": True,
        "next": [
            {"local": slot.isoformat(), "utc": slot.astimezone(UTC).isoformat()}
            for slot in upcoming
        ],
        "last_slot": last.isoformat(),
        "last_run": {
            "run": f"{board.weekly}@{last.isoformat()}",
            "slot": last.isoformat(),
            "manual": False,
            "status": "failed",
            "error": "the app is not in <!channel>",
            "finished": last.timestamp() + 5,
        },
        "skipped": [schedule.previous_slot(last).isoformat()],
        "paused": None,
        "slack_calls": {
            "calls": {"conversations.history": 3, "auth.test": 1},
            "rate_limited": {"conversations.history": 1},
            "lateness": 5.0,
        },
    }
    assert weekly["next"][0]["local"].endswith(("+01:00", "+02:00"))
    assert weekly["next"][0]["utc"].endswith("+00:00")
    assert paused["enabled"] is False and paused["next"] == []
    assert (paused["last_slot"], paused["last_run"], paused["skipped"]) == (None, None, [])
    assert paused["slack_calls"] is None


def test_a_broken_file_is_shown_not_a_500_and_a_fixed_one_is_read_again(
    board: Board, tmp_path: Path
) -> None:
    broken = tmp_path / "schedules.yaml"
    broken.write_text("version: 1\nschedules:\n  - {name: x, cron: '0 25 * * *', channels: []}\n")
    with board.app(SCHEDULES_FILE=str(broken)) as client:
        answer = client.get("/schedules")
        assert answer.status_code == 200
        shown = answer.json()
        assert shown["schedules"] == []
        assert shown["errors"][0].startswith(
            f"{broken}:3: schedules[0] (x).cron: '0 25 * * *' is not a valid"
        )
        broken.write_text(board.schedules.read_text())
        fixed = client.get("/schedules").json()
    assert fixed["errors"] == [] and len(fixed["schedules"]) == 2


def test_a_missing_file_is_an_error_too(board: Board, tmp_path: Path) -> None:
    with board.app(SCHEDULES_FILE=str(tmp_path / "nowhere.yaml")) as client:
        shown = client.get("/schedules").json()
    assert shown["schedules"] == []
    assert "nowhere.yaml: cannot read" in shown["errors"][0]


def test_schedules_while_redis_is_down_is_503(board: Board) -> None:
    with board.app(REDIS_URL="redis://127.0.0.1:1/0") as client:
        answer = client.get("/schedules")
    assert (answer.status_code, answer.json()) == (503, {"error": "Redis is unreachable"})


def test_the_file_is_parsed_again_only_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "schedules.yaml"
    path.write_text("version: 1\nschedules: []\n")
    cached = SchedulesFile(path)
    first = cached.read()
    assert cached.read() is first
    path.write_text(
        "version: 1\nschedules:\n"
        "  - {name: a, cron: '0 9 * * *', channels: [C1], deliver: {slack: [C2]}}\n"
    )
    assert list(cached.read().schedules) == ["a"]


def test_the_last_run_is_the_last_slots_record_else_the_newest() -> None:
    schedule = Schedule(name="s", cron="0 9 * * *", channels=("C1",), timezone="Europe/Berlin")
    slot = datetime(2025, 1, 6, 9, tzinfo=schedule.zone)
    history = [
        RunRecord.from_json(record(schedule, slot + timedelta(hours=1), "delivered")),
        RunRecord.from_json(record(schedule, slot, "failed", error="boom")),
    ]
    # Beat may spell the slot in UTC: it is the same instant.
    found = status.last_record(history, slot.astimezone(UTC).isoformat())
    assert found is not None and found.outcome() == {
        "run": f"s@{slot.isoformat()}",
        "slot": slot.isoformat(),
        "manual": False,
        "status": "failed",
        "error": "boom",
        "finished": slot.timestamp() + 5,
    }
    still_running = (slot + timedelta(days=1)).isoformat()
    newest = status.last_record(history, still_running)
    assert newest is not None and newest.status == "delivered"
    assert status.last_record([], still_running) is None


def test_digests_status_prints_a_table_and_the_same_json_as_the_route(board: Board) -> None:
    table = board.cli()
    assert table.returncode == 0, table.stderr
    header, weekly, paused, skipped, calls, totals = table.stdout.splitlines()
    columns = ["NAME", "ENABLED", "TIMEZONE", "CRON", "NEXT SLOT", "LAST SLOT", "LAST RUN"]
    assert [c.strip() for c in header.split("  ") if c.strip()] == columns
    assert weekly.startswith(board.weekly) and "Europe/Berlin" in weekly
    assert "failed (" in weekly and weekly.endswith("): the app is not in <!channel>")
    assert paused.split()[:2] == [board.paused, "no"] and paused.endswith("never run")
    assert skipped.startswith(f"{board.weekly} skipped ")
    assert calls == (
        f"{board.weekly} last run's Slack calls: conversations.history 3 (1 answered 429), "
        "auth.test 1; finished 5.0s after its slot"
    )
    assert totals == (
        "Slack calls of the last runs: 4 (conversations.history 3 (1 answered 429), auth.test 1)"
    )

    shown = board.cli("--json")
    assert shown.returncode == 0, shown.stderr
    with board.app() as client:
        assert json.loads(shown.stdout) == client.get("/schedules").json()


def test_digests_status_exits_1_for_a_broken_file_and_says_why(
    board: Board, tmp_path: Path
) -> None:
    broken = tmp_path / "schedules.yaml"
    broken.write_text("version: 2\n")
    done = board.cli(SCHEDULES_FILE=str(broken))
    assert done.returncode == 1
    assert f"error: {broken}:1: version: '2' is not a version; expected 1" in done.stdout


def test_digest_schedules_answers_with_next_slot_and_last_outcome(board: Board) -> None:
    with HttpSink() as slack, board.app() as client:
        body, headers = signed_form(command_form("schedules", slack.url("/reply")))
        answer = client.post("/slack/commands", content=body, headers=headers)
        assert answer.json()["text"] == "Working on `/digest schedules`…"
        deadline = time.monotonic() + 30
        while not slack.posts and time.monotonic() < deadline:
            time.sleep(0.05)
    assert slack.posts, "no reply to /digest schedules"
    title, weekly, paused = slack.posts[0][1]["text"].splitlines()
    assert title == "*Schedules*"
    assert weekly.startswith(f"• `{board.weekly}` (0 9 * * MON, Europe/Berlin): next 20")
    assert weekly.endswith("): the app is not in &lt;!channel&gt;")
    assert "<!channel>" not in weekly
    assert paused == f"• `{board.paused}` (30 8 * * *, UTC): disabled; last: never run"
