"""`digests tick` and `POST /tick`: what one beat tick does, once however many ask."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from jobs import keys
from jobs.scheduling import pause
from jobs.scheduling.file import load
from jobs.scheduling.slots import Schedule
from jobs.scheduling.tick import tick
from tests.webhook.test_triggers import QUIET_DB, TOKEN, Triggers, setup

EVERY_MINUTE = """\
version: 1
defaults: {{deliver: {{slack: ["#nowhere"]}}, channels: ["#nowhere"]}}
schedules:
  - {{name: {name}, cron: "* * * * *"}}
  - {{name: {name}-off, cron: "* * * * *", enabled: false}}
"""


@pytest.fixture
def minutely(redis_url: str, tmp_path: Path) -> Iterator[Triggers]:
    triggers = setup(redis_url, QUIET_DB, tmp_path)
    triggers.name = f"minutely-{uuid.uuid4().hex[:8]}"
    triggers.schedules.write_text(EVERY_MINUTE.format(name=triggers.name))
    yield triggers
    triggers.redis.close()


def schedules(triggers: Triggers) -> list[Schedule]:
    return list(load(triggers.schedules).values())


def rewind(triggers: Triggers, minutes: int) -> datetime:
    """Set the schedule's cursor `minutes` slots back, as if ticks had stopped; the newest slot."""
    schedule = load(triggers.schedules)[triggers.name]
    newest = schedule.latest_slot(datetime.now(UTC))
    cursor = newest - timedelta(minutes=minutes)
    triggers.redis.set(keys.last_slot(triggers.name), cursor.isoformat())
    return newest


def due(queued: dict[str, Any], newest: datetime) -> bool:
    """Whether the tick ran the newest slot (or the next, had a minute begun in between)."""
    return queued["slot"] in (newest.isoformat(), (newest + timedelta(minutes=1)).isoformat())


def mine(found: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [entry for entry in found if entry["schedule"] == name]


def test_a_new_schedule_starts_counting_and_then_runs_each_due_slot_once(
    minutely: Triggers,
) -> None:
    client = minutely.redis
    first = tick(client, schedules(minutely), datetime.now(UTC))
    assert minutely.name in first.started and not mine(first.enqueued, minutely.name)
    newest = rewind(minutely, 3)
    ticked = tick(client, schedules(minutely), datetime.now(UTC))
    [queued] = mine(ticked.enqueued, minutely.name)
    assert due(queued, newest) and not queued["duplicate"]
    reasons = [s["reason"] for s in mine(ticked.skipped, minutely.name)]
    assert reasons in (["a later slot was due"] * 2, ["a later slot was due"] * 3)
    assert minutely.queued()[queued["task_id"]][0] == minutely.name
    again = tick(client, schedules(minutely), datetime.now(UTC))
    assert not mine(again.enqueued, minutely.name), "a doubled tick queued again"
    assert f"{minutely.name}-off" not in [*again.started, *(q["schedule"] for q in again.enqueued)]


def test_ticks_at_once_queue_one_task_per_slot(minutely: Triggers) -> None:
    tick(minutely.redis, schedules(minutely), datetime.now(UTC))
    rewind(minutely, 1)
    results: list[list[dict[str, Any]]] = []

    def one() -> None:
        ticked = tick(minutely.redis, schedules(minutely), datetime.now(UTC))
        results.append(mine(ticked.enqueued, minutely.name))

    threads = [threading.Thread(target=one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    task_ids = {entry["task_id"] for found in results for entry in found}
    assert len(task_ids) == 1
    runs = [args for args in minutely.queued().values() if args[0] == minutely.name]
    assert len(runs) == 1


def test_a_paused_schedules_slot_is_queued_for_its_worker_to_skip(minutely: Triggers) -> None:
    tick(minutely.redis, schedules(minutely), datetime.now(UTC))
    pause.pause(minutely.redis, minutely.name, "cli:test", datetime.now(UTC))
    rewind(minutely, 1)
    [queued] = mine(
        tick(minutely.redis, schedules(minutely), datetime.now(UTC)).enqueued, minutely.name
    )
    assert queued["paused"] is True


def test_post_tick_takes_the_trigger_token_and_says_what_it_did(minutely: Triggers) -> None:
    with minutely.app() as client:
        assert client.post("/tick").status_code == 401
        assert client.post("/tick", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert mine(tick(minutely.redis, [], datetime.now(UTC)).enqueued, minutely.name) == []
        answer = client.post("/tick", headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 200
        assert minutely.name in answer.json()["started"]
        newest = rewind(minutely, 1)
        answer = client.post("/tick", headers={"Authorization": f"Bearer {TOKEN}"})
        [queued] = mine(answer.json()["enqueued"], minutely.name)
        assert due(queued, newest)
    with minutely.app(TRIGGER_TOKEN="") as client:
        assert client.post("/tick", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 503


def test_digests_tick_prints_what_it_queued(minutely: Triggers) -> None:
    minutely.cli("tick")
    newest = rewind(minutely, 1)
    done = minutely.cli("tick", "--json")
    assert done.returncode == 0, done.stderr
    [queued] = mine(json.loads(done.stdout)["enqueued"], minutely.name)
    assert due(queued, newest)
    assert minutely.name not in minutely.cli("tick").stdout  # nothing new is due
