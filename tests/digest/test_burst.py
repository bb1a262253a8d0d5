"""A burst of runs sharing pages while their Redis crashes and comes back: each delivers once."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from jobs.digest.ledger import Ledger
from jobs.queue import Run, enqueue, run_job
from jobs.scheduling.file import load
from sandbox.redis_server import RedisServer
from sandbox.slack import SlackSimulator
from sandbox.workspace import generate
from tests.conftest import Child, Worker, environment, wait_until

SCHEDULES = """version: 1
defaults: {skip_if_quiet: false, window: 7d}
schedules:
  - name: ops-a
    cron: "0 9 * * MON"
    channels: ["#general", "#eng"]
    deliver: {slack: ["#eng-digest"]}
  - name: ops-b
    cron: "0 9 * * MON"
    channels: ["#eng", "#support"]
    deliver: {slack: ["#eng-digest"]}
  - name: ops-c
    cron: "0 9 * * MON"
    channels: ["#general", "#support"]
    deliver: {slack: ["#support-leads"]}
"""


@dataclass
class Burst:
    server: RedisServer
    slack: SlackSimulator
    schedules: Path
    slot: datetime


@pytest.fixture
def burst(tmp_path: Path) -> Iterator[Burst]:
    """A Redis on AOF of this test's own, a worker and a beat on it, and a workspace whose week
    ends at the last Monday 09:00 (the slot the schedules share)."""
    schedules = tmp_path / "schedules.yaml"
    schedules.write_text(SCHEDULES)
    slot = next(iter(load(schedules).values())).latest_slot(datetime.now(UTC))
    workspace = generate(seed=21, messages=1200, start=slot - timedelta(days=6), end=slot)
    server = RedisServer(appendfsync="always").start()
    with SlackSimulator(workspace) as slack:
        overrides = {
            "SCHEDULES_FILE": str(schedules),
            "SLACK_API_URL": slack.url,
            "SLACK_BOT_TOKEN": slack.token,
        }
        env = {**os.environ, **environment(server.url), **overrides}
        worker = Worker(server.url, overrides).start()
        beat = Child("digests-beat-")
        beat.spawn([sys.executable, "-m", "celery", "-A", "jobs", "beat"], env)
        try:
            yield Burst(server, slack, schedules, slot)
        finally:
            beat.stop()
            worker.stop()
            server.stop()


@pytest.mark.timeout(300)
def test_a_redis_crash_mid_burst_ends_every_run_delivered_once(burst: Burst) -> None:
    schedules = load(burst.schedules)
    client = redis.Redis.from_url(burst.server.url)
    runs = [Run(name, burst.slot) for name in schedules]
    burst.slack.slow("conversations.history", 0.5)  # the runs are collecting when Redis dies
    for run in runs:
        enqueue(client, run_job(schedules[run.schedule], run))
    wait_until(lambda: burst.slack.calls["conversations.history"] >= 3)
    burst.server.kill()
    time.sleep(1)
    burst.server.start()
    burst.slack.clear_faults()
    client = redis.Redis.from_url(burst.server.url)
    wait_until(lambda: all(Ledger(client, run.id).record() for run in runs), timeout=180)
    for run in runs:
        record = Ledger(client, run.id).record()
        assert record is not None and record.status == "delivered", record
        posted = [p for p in burst.slack.posted if p["metadata"]["event_payload"]["run"] == run.id]
        parts = [p["metadata"]["event_payload"]["part"] for p in posted]
        assert parts == list(range(len(parts))) and parts, parts  # each part once, in order
    client.close()
