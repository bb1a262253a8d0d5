"""`POST /triggers/{name}`, `digests trigger`, `/digest run`: one task per slot, however asked."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
import redis
from starlette.testclient import TestClient

from jobs import keys
from jobs.config import Settings
from jobs.scheduling.file import load
from jobs.scheduling.slots import Schedule
from sandbox.slack import SlackSimulator
from sandbox.workspace import generate
from tests.conftest import ROOT, Worker, environment, wait_for_state
from tests.http_sink import HttpSink
from tests.messages import task_args
from tests.signed import command_form, signed_form
from webhook.app import create_app

TOKEN = "trigger-token-0123456789abcdef"
# A daily cron away from midnight UTC, so that no slot boundary falls inside a test.
SCHEDULES = """\
version: 1
defaults: {{deliver: {{slack: ["#nowhere"]}}}}
schedules:
  - name: {name}
    cron: "0 9 * * *"
    timezone: Europe/Berlin
    channels: ["#nowhere"]
    timeout: 10m
  - {{name: {name}-off, cron: "0 9 * * *", channels: ["#nowhere"], enabled: false}}
  - {{name: {name}-owned, cron: "0 9 * * *", channels: ["#nowhere"], owners: [U0OWNER]}}
"""
# Databases of their own: no worker consumes QUIET_DB, so its queue counts what was pushed.
QUIET_DB = 7
WORKER_DB = 6


def database(redis_url: str, number: int) -> str:
    return redis_url.rsplit("/", 1)[0] + f"/{number}"


@dataclass
class Triggers:
    name: str
    schedules: Path
    env: dict[str, str]  # the service's environment, for the app and the CLI
    redis: redis.Redis

    def app(self, **env: str) -> TestClient:
        return TestClient(create_app(Settings.from_env({**self.env, **env})))

    @property
    def schedule(self) -> Schedule:
        return load(self.schedules)[self.name]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "jobs", *args]
        env = {**os.environ, **self.env}
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)

    def queued(self) -> dict[str, list[Any]]:
        """Each queued message's task id and its arguments, as a worker would decode them."""
        found = {}
        for raw in self.redis.lrange("celery", 0, -1):
            message = json.loads(raw)
            found[message["headers"]["id"]] = task_args(raw)
        return found


def setup(redis_url: str, number: int, folder: Path) -> Triggers:
    name = f"daily-{uuid.uuid4().hex[:8]}"  # a slot's dedupe key outlives one test
    schedules = folder / "schedules.yaml"
    schedules.write_text(SCHEDULES.format(name=name))
    url = database(redis_url, number)
    env = {**environment(url), "TRIGGER_TOKEN": TOKEN, "SCHEDULES_FILE": str(schedules)}
    return Triggers(name, schedules, env, redis.Redis.from_url(url, decode_responses=True))


@pytest.fixture
def quiet(redis_url: str, tmp_path: Path) -> Iterator[Triggers]:
    triggers = setup(redis_url, QUIET_DB, tmp_path)
    yield triggers
    triggers.redis.close()


@pytest.fixture
def client(quiet: Triggers) -> Iterator[TestClient]:
    with quiet.app() as test_client:
        yield test_client


def trigger(client: TestClient, name: str, token: str = TOKEN, **options: Any) -> httpx2.Response:
    headers = {"Authorization": f"Bearer {token}", **options.pop("headers", {})}
    return client.post(f"/triggers/{name}", headers=headers, **options)


def current_slot(schedule: Schedule) -> datetime:
    return schedule.latest_slot(datetime.now(UTC))


def test_without_a_trigger_token_triggers_are_off(quiet: Triggers) -> None:
    with quiet.app(TRIGGER_TOKEN="") as client:
        answer = trigger(client, quiet.name)
    assert answer.status_code == 503
    assert answer.json() == {"error": "TRIGGER_TOKEN is not set: triggers are off"}


@pytest.mark.parametrize(
    ("authorization", "error"),
    [
        (None, "missing bearer token"),
        (b"Basic " + base64.b64encode(b"x:" + TOKEN.encode()), "missing bearer token"),
        (f"Bearer {TOKEN}x".encode(), "wrong bearer token"),
        (b"Bearer wrong", "wrong bearer token"),
        ("Bearer é".encode(), "wrong bearer token"),  # not even ASCII
    ],
)
def test_a_missing_or_wrong_token_is_401(
    client: TestClient, quiet: Triggers, authorization: bytes | None, error: str
) -> None:
    headers = {b"Authorization": authorization} if authorization else {}
    answer = client.post(f"/triggers/{quiet.name}", headers=headers)
    assert answer.status_code == 401
    assert answer.json() == {"error": error}
    assert answer.headers["www-authenticate"] == "Bearer"
    assert all(args[0] != quiet.name for args in quiet.queued().values())


def test_an_unknown_schedule_is_404_and_a_disabled_one_409(
    client: TestClient, quiet: Triggers
) -> None:
    unknown = trigger(client, "no-such-schedule")
    assert (unknown.status_code, unknown.json()) == (
        404,
        {"error": "no schedule named 'no-such-schedule'"},
    )
    disabled = trigger(client, f"{quiet.name}-off")
    assert (disabled.status_code, disabled.json()) == (
        409,
        {"error": f"schedule '{quiet.name}-off' is disabled"},
    )


def test_a_schedules_file_that_does_not_load_is_503_with_its_error(
    client: TestClient, quiet: Triggers
) -> None:
    quiet.schedules.write_text(quiet.schedules.read_text().replace('"0 9 * * *"', '"0 25 * * *"'))
    answer = trigger(client, quiet.name)
    assert answer.status_code == 503
    error = answer.json()["error"]
    assert error.startswith("the schedules file does not load: ")
    assert str(quiet.schedules) in error and "'0 25 * * *' is not a valid cron" in error


def test_a_slot_that_is_not_one_of_the_cron_is_400_naming_the_nearest(
    client: TestClient, quiet: Triggers
) -> None:
    answer = trigger(client, quiet.name, json={"slot": "2025-01-06T09:30:00+01:00"})
    assert answer.status_code == 400
    assert answer.json()["error"] == (
        f"2025-01-06T09:30:00+01:00 is not a slot of {quiet.name} ('0 9 * * *' in "
        "Europe/Berlin): the nearest are 2025-01-06T09:00:00+01:00 and 2025-01-07T09:00:00+01:00"
    )


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"slot": "yesterday"}, "slot 'yesterday' is not an ISO-8601 date and time"),
        ({"slot": "2025-01-06T09:00:00"}, "slot '2025-01-06T09:00:00' has no UTC offset"),
        ({"slot": 1736150400}, "slot must be an ISO-8601 string"),
        ({"slot": "2025-01-06T08:00:00Z", "force": True}, "unknown field 'force'"),
        ([], "the JSON body is not an object"),
    ],
)
def test_a_bad_body_is_400(client: TestClient, quiet: Triggers, body: Any, error: str) -> None:
    answer = trigger(client, quiet.name, json=body)
    assert answer.status_code == 400
    assert answer.json()["error"].startswith(error)


@pytest.mark.parametrize(
    "slot",
    [
        "9999-12-31T23:59:59+14:00",
        "9999-12-31T23:59:59+00:00",
        "0001-01-01T00:00:00+00:00",
        "0001-01-01T00:00:00-14:00",
        "1999-12-31T23:59:59+00:00",
        "2101-01-01T00:00:00+00:00",
    ],
)
def test_a_slot_outside_the_years_2000_to_2100_is_400(
    client: TestClient, quiet: Triggers, slot: str
) -> None:
    answer = trigger(client, quiet.name, json={"slot": slot})
    assert answer.status_code == 400
    assert answer.json() == {
        "error": f"slot {slot!r} is out of range: slots are in the years 2000 to 2100"
    }


def test_the_cli_refuses_a_slot_out_of_range_in_a_sentence(quiet: Triggers) -> None:
    done = quiet.cli("trigger", quiet.name, "--slot", "9999-12-31T23:59:59+14:00", "--no-wait")
    assert done.returncode == 1
    assert done.stderr == (
        "digests: slot '9999-12-31T23:59:59+14:00' is out of range: "
        "slots are in the years 2000 to 2100\n"
    )


def test_a_future_slot_is_400(client: TestClient, quiet: Triggers) -> None:
    later = quiet.schedule.next_slot(datetime.now(UTC)).isoformat()
    answer = trigger(client, quiet.name, json={"slot": later})
    assert answer.status_code == 400
    assert answer.json()["error"].startswith(f"{later} has not come yet")


def test_malformed_json_and_other_content_types_are_400(
    client: TestClient, quiet: Triggers
) -> None:
    json_type = {"Content-Type": "application/json"}
    malformed = trigger(client, quiet.name, content=b"{", headers=json_type)
    assert (malformed.status_code, malformed.json()) == (400, {"error": "malformed JSON body"})
    form = trigger(client, quiet.name, data={"slot": "2025-01-06T08:00:00Z"})
    assert form.status_code == 400
    assert form.json() == {"error": "expected Content-Type: application/json"}


def test_a_body_over_64_kib_is_413(client: TestClient, quiet: Triggers) -> None:
    body = b'{"slot": "' + b" " * 65536 + b'"}'
    answer = trigger(client, quiet.name, content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 413


def test_a_trigger_queues_the_current_slot_with_the_schedules_time_limit(
    client: TestClient, quiet: Triggers
) -> None:
    answer = trigger(client, quiet.name)
    assert answer.status_code == 202
    body = answer.json()
    task_id = body["task_id"]
    assert body == {
        "task_id": task_id,
        "status_url": f"http://testserver/tasks/{task_id}",
        "duplicate": False,
    }
    assert quiet.queued()[task_id] == [quiet.name, current_slot(quiet.schedule).isoformat(), False]
    (message,) = [m for m in quiet.redis.lrange("celery", 0, -1) if task_id in m]
    assert json.loads(message)["headers"]["timelimit"] == [630.0, 600.0]
    assert client.get(f"/tasks/{task_id}").json()["state"] == "PENDING"
    # The slot stays claimed for as long as its run is remembered, not an event's hour.
    run = f"{quiet.name}@{current_slot(quiet.schedule).isoformat()}"
    assert quiet.redis.ttl(keys.enqueued(run)) > keys.EVENT_DEDUPE_TTL


def test_the_status_url_is_under_public_url_when_it_is_set(quiet: Triggers) -> None:
    with quiet.app(PUBLIC_URL="https://digests.example.com/base") as client:
        body = trigger(client, quiet.name).json()
    assert body["status_url"] == f"https://digests.example.com/base/tasks/{body['task_id']}"


def test_two_triggers_for_the_current_slot_queue_one_task(
    client: TestClient, quiet: Triggers
) -> None:
    before = quiet.redis.llen("celery")
    first, second = (trigger(client, quiet.name).json() for _ in range(2))
    assert first["task_id"] == second["task_id"]
    assert (first["duplicate"], second["duplicate"]) == (False, True)
    assert quiet.redis.llen("celery") == before + 1


def test_a_trigger_and_beats_enqueue_run_for_one_slot_queue_one_task(
    client: TestClient, quiet: Triggers
) -> None:
    """`digests trigger` queues with `enqueue_run`, beat's own path: either order, one task."""
    before = quiet.redis.llen("celery")
    by_route = trigger(client, quiet.name).json()["task_id"]
    by_cli = quiet.cli("trigger", quiet.name, "--no-wait")
    assert by_cli.returncode == 0, by_cli.stderr
    assert by_cli.stdout.strip() == by_route

    earlier = quiet.schedule.previous_slot(current_slot(quiet.schedule)).isoformat()
    first = quiet.cli("trigger", quiet.name, "--slot", earlier, "--no-wait")
    assert first.returncode == 0, first.stderr
    then = trigger(client, quiet.name, json={"slot": earlier}).json()
    assert then["task_id"] == first.stdout.strip() and then["duplicate"]
    assert quiet.queued()[then["task_id"]] == [quiet.name, earlier, False]
    assert quiet.redis.llen("celery") == before + 2


def test_a_slot_given_in_utc_is_the_same_run_as_in_the_schedules_zone(
    client: TestClient, quiet: Triggers
) -> None:
    slot = quiet.schedule.previous_slot(current_slot(quiet.schedule))
    local = trigger(client, quiet.name, json={"slot": slot.isoformat()}).json()
    utc = trigger(client, quiet.name, json={"slot": slot.astimezone(UTC).isoformat()}).json()
    assert utc["task_id"] == local["task_id"] and utc["duplicate"]


def test_an_idempotency_key_is_one_manual_run_per_key(client: TestClient, quiet: Triggers) -> None:
    before = quiet.redis.llen("celery")
    asked = datetime.now(UTC)
    first = trigger(client, quiet.name, headers={"Idempotency-Key": "deploy-1"}).json()
    time.sleep(0.01)
    again = trigger(client, quiet.name, headers={"Idempotency-Key": "deploy-1"}).json()
    other = trigger(client, quiet.name, headers={"Idempotency-Key": "deploy-2"}).json()
    assert again["task_id"] == first["task_id"] and again["duplicate"]
    assert other["task_id"] != first["task_id"]
    assert quiet.redis.llen("celery") == before + 2
    name, slot, manual, by = quiet.queued()[first["task_id"]]
    moment = datetime.fromisoformat(slot)
    # An ad-hoc slot: the moment it was asked for, not a slot of the cron, queued as manual.
    assert name == quiet.name and manual and abs(moment - asked) < timedelta(seconds=5)
    assert by == "trigger"
    assert moment != quiet.schedule.latest_slot(moment)


@pytest.mark.parametrize(
    ("key", "body", "error"),
    [
        ("x" * 256, None, "Idempotency-Key must be 1 to 255 printable ASCII characters"),
        ("deploy-3", {"slot": "2025-01-06T08:00:00Z"}, "an Idempotency-Key asks for a manual"),
    ],
)
def test_an_idempotency_key_takes_no_slot_and_has_a_bounded_size(
    client: TestClient, quiet: Triggers, key: str, body: Any, error: str
) -> None:
    answer = trigger(client, quiet.name, headers={"Idempotency-Key": key}, json=body)
    assert answer.status_code == 400
    assert answer.json()["error"].startswith(error)


def test_a_trigger_while_redis_is_down_is_503(quiet: Triggers) -> None:
    with quiet.app(REDIS_URL="redis://127.0.0.1:1/0") as client:
        answer = trigger(client, quiet.name)
    assert (answer.status_code, answer.json()) == (
        503,
        {"error": "the queue is unavailable; try again"},
    )


def test_the_cli_refuses_a_disabled_schedule_and_a_slot_off_the_cron(quiet: Triggers) -> None:
    disabled = quiet.cli("trigger", f"{quiet.name}-off", "--no-wait")
    assert disabled.returncode == 1
    assert f"schedule '{quiet.name}-off' is disabled" in disabled.stderr
    off_cron = quiet.cli("trigger", quiet.name, "--slot", "2025-01-06T09:30:00+01:00")
    assert off_cron.returncode == 1
    assert "the nearest are 2025-01-06T09:00:00+01:00 and" in off_cron.stderr


# With a real worker and the Slack simulator: `#nowhere` does not exist, so every run fails
# at once and is recorded as failed; the record names the slot the worker ran.


@pytest.fixture(scope="module")
def live(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Triggers]:
    triggers = setup(redis_url, WORKER_DB, tmp_path_factory.mktemp("triggers"))
    with SlackSimulator(generate(messages=20)) as slack:
        overrides = {
            "SLACK_API_URL": slack.url,
            "SLACK_BOT_TOKEN": slack.token,
            "SCHEDULES_FILE": triggers.env["SCHEDULES_FILE"],
        }
        triggers.env.update(overrides)
        worker = Worker(database(redis_url, WORKER_DB), overrides).start()
        try:
            yield triggers
        finally:
            worker.stop()
            triggers.redis.close()


def test_a_real_worker_runs_the_slot_a_trigger_queued(live: Triggers) -> None:
    with live.app() as client:
        task_id = trigger(client, live.name).json()["task_id"]
        state = wait_for_state(client, task_id)
    assert state["state"] == "SUCCESS"
    record = state["result"]
    assert isinstance(record, dict)
    slot = current_slot(live.schedule).isoformat()
    assert (record["run"], record["slot"], record["manual"]) == (f"{live.name}@{slot}", slot, False)
    assert record["status"] == "failed" and "#nowhere" in record["error"]


def test_digests_trigger_follows_the_run_and_fails_when_it_failed(live: Triggers) -> None:
    earlier = live.schedule.previous_slot(current_slot(live.schedule)).isoformat()
    done = live.cli("trigger", live.name, "--slot", earlier, "--json")
    assert done.returncode == 1, done.stderr
    record = json.loads(done.stdout)
    assert (record["slot"], record["status"]) == (earlier, "failed")


def slash_command(client: TestClient, text: str) -> str:
    """The reply a worker sends to `response_url` for `/digest {text}`."""
    with HttpSink() as slack:
        body, headers = signed_form(command_form(text, slack.url("/reply")))
        assert client.post("/slack/commands", content=body, headers=headers).status_code == 200
        deadline = time.monotonic() + 30
        while not slack.posts and time.monotonic() < deadline:
            time.sleep(0.05)
    assert slack.posts, f"no reply to /digest {text}"
    reply: str = slack.posts[0][1]["text"]
    return reply


def test_digest_run_starts_a_manual_run_and_says_so(live: Triggers) -> None:
    with live.app() as client:
        reply = slash_command(client, f"run {live.name}")
        assert reply.startswith(f"Started {live.name}: a manual run of the window ending ")
        found = re.search(r"\(task `([0-9a-f-]+)`\)", reply)
        assert found, reply
        state = wait_for_state(client, found[1])
    record = state["result"]
    assert isinstance(record, dict)
    assert (record["manual"], record["status"], record["by"]) == (True, "failed", "U0001")


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("run <!channel>", "No run: there is no schedule named `&lt;!channel&gt;`;"),
        ("run", "Which schedule? `/digest run NAME`"),
        ("run {name}-off", "No run: `{name}-off` is disabled."),
    ],
)
def test_digest_run_says_why_it_did_not_start(live: Triggers, text: str, reply: str) -> None:
    with live.app() as client:
        answer = slash_command(client, text.format(name=live.name))
    assert answer.startswith(reply.format(name=live.name))


def test_a_paused_slot_is_skipped_but_a_manual_run_runs(live: Triggers) -> None:
    assert live.cli("pause", live.name, "--reason", "freeze").returncode == 0
    try:
        with live.app() as client:
            slot = live.schedule.previous_slot(
                live.schedule.previous_slot(current_slot(live.schedule))
            )
            task_id = trigger(client, live.name, json={"slot": slot.isoformat()}).json()["task_id"]
            record = wait_for_state(client, task_id)["result"]
            assert isinstance(record, dict)
            assert (record["status"], record["reason"]) == ("skipped", "paused")
            manual = trigger(client, live.name, headers={"Idempotency-Key": uuid.uuid4().hex})
            ran = wait_for_state(client, manual.json()["task_id"])["result"]
            assert isinstance(ran, dict) and ran["status"] == "failed"  # it ran: #nowhere fails
    finally:
        live.cli("resume", live.name)


def test_digest_pause_and_resume_from_slack(live: Triggers) -> None:
    with live.app() as client:
        paused = slash_command(client, f"pause {live.name} 1w")
        assert paused.startswith(f"Paused `{live.name}` until ")
        shown = slash_command(client, "schedules")
        resumed = slash_command(client, f"resume {live.name}")
        assert resumed == f"Resumed `{live.name}`: its next slot runs."
        assert slash_command(client, f"resume {live.name}") == f"`{live.name}` was not paused."
    assert live.name in shown
    actions = [json.loads(raw) for raw in live.redis.lrange(keys.actions(live.name), 0, -1)]
    assert [(a["action"], a["who"]) for a in actions][:2] == [
        ("resume", "U0001"),
        ("pause", "U0001"),
    ]


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("pause {name} 2020-01-01", "No pause: pause until '2020-01-01': that is in the past."),
        ("pause {name} whenever", "No pause: pause until 'whenever' is not a duration"),
        ("pause no-such", "No pause: there is no schedule named `no-such`"),
        ("pause", "Which schedule? `/digest pause NAME`"),
        ("pause {name}-owned", "No pause: only the owners of `{name}-owned` and the admins may"),
        ("run {name}-owned", "No run: only the owners of `{name}-owned` and the admins may"),
        ("resume {name}-owned", "No resume: only the owners of `{name}-owned`"),
    ],
)
def test_digest_pause_says_why_it_did_not(live: Triggers, text: str, reply: str) -> None:
    with live.app() as client:
        answer = slash_command(client, text.format(name=live.name))
    assert answer.startswith(reply.format(name=live.name)), answer
    assert not live.redis.exists(keys.paused(live.name))
    assert not live.redis.exists(keys.paused(f"{live.name}-owned"))
