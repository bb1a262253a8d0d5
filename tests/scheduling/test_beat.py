"""Beat: real `celery -A jobs beat` processes on a Redis database of their own, and catch-up maths.

The beats run per-second crons (6 fields, seconds last) and tick every 0.2 s, so their lock lives
2 s; what they enqueued is read from the Celery queue itself and the `enqueued` keys.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from jobs import keys
from jobs.config import Settings
from jobs.queue import QUEUE
from jobs.scheduling import pause
from jobs.scheduling.beat import LOCK_INTERVALS
from jobs.scheduling.due import catch_up
from jobs.scheduling.file import load
from jobs.scheduling.slots import Schedule
from jobs.scheduling.tick import tick
from sandbox.redis_server import RedisServer
from tests.conftest import ROOT, Child, Worker, environment, wait_until
from tests.http_sink import HttpSink
from tests.messages import task_args
from webhook.app import create_app

TICK = 0.2  # each beat's max loop interval
LOCK_TTL = LOCK_INTERVALS * TICK
GRACE = timedelta(seconds=1.5 * LOCK_TTL)
SECOND = timedelta(seconds=1)
EVERY_SECOND = "* * * * * *"
BEAT = [sys.executable, "-m", "celery", "-A", "jobs", "beat"]
BEAT += ["--", f"beat_max_loop_interval={TICK}"]  # after `--`: Celery settings


def beat_environment(redis_url: str, schedules: Path) -> dict[str, str]:
    return {
        **os.environ,
        "REDIS_URL": redis_url,
        "SCHEDULES_FILE": str(schedules),
        "LOG_LEVEL": "INFO",
    }


class Beat(Child):
    """A `celery -A jobs beat` process."""

    def __init__(self, redis_url: str, schedules: Path) -> None:
        super().__init__("digests-beat-")
        self.env = beat_environment(redis_url, schedules)

    def start(self) -> Beat:
        self.spawn(BEAT, self.env)
        wait_until(lambda: " leads" in self.log() or " stands by" in self.log(), self.log)
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


@pytest.fixture
def beat_url(redis_url: str) -> Iterator[str]:
    """A database of beat's own, emptied first, so no worker of the session takes its tasks."""
    url = redis_url.rsplit("/", 1)[0] + "/5"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.close()


@pytest.fixture
def db(beat_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(beat_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def schedules_file(tmp_path: Path) -> Path:
    return tmp_path / "schedules.yaml"


@pytest.fixture
def sentry() -> Iterator[HttpSink]:
    """A Sentry to report to: what beat's Sentry client sends arrives in `raw`."""
    with HttpSink() as sink:
        yield sink


@pytest.fixture
def beats(beat_url: str, schedules_file: Path) -> Iterator[Callable[..., Beat]]:
    """Starts beats on `schedules_file`, with more environment if given; each is stopped at
    the end."""
    started: list[Beat] = []

    def start(**env: str) -> Beat:
        beat = Beat(beat_url, schedules_file)
        beat.env.update(env)
        started.append(beat.start())
        return started[-1]

    yield start
    for beat in started:
        beat.stop()
        beat.log_path.unlink(missing_ok=True)


def write_schedules(path: Path, *entries: Mapping[str, object]) -> None:
    lines = ["version: 1", "schedules:"]
    lines += [
        f"  - {json.dumps({'channels': ['#eng'], 'deliver': {'slack': ['#d']}, **entry})}"
        for entry in entries
    ]
    path.write_text("\n".join(lines) + "\n")


def queued(db: redis.Redis) -> dict[str, list[datetime]]:
    """Each schedule's slots in the Celery queue, in order, from the messages themselves."""
    found: dict[str, list[datetime]] = {}
    for raw in db.lrange(QUEUE, 0, -1):
        message = json.loads(raw)
        assert message["headers"]["task"] == "jobs.tasks.run_digest"
        name, slot, manual = task_args(raw)
        assert not manual
        found.setdefault(name, []).append(datetime.fromisoformat(slot))
    return {name: sorted(slots) for name, slots in found.items()}


def slots_of(db: redis.Redis, name: str) -> list[datetime]:
    return queued(db).get(name, [])


def assert_every_slot_once(slots: list[datetime], step: timedelta = SECOND) -> None:
    assert len(set(slots)) == len(slots), f"a slot was enqueued twice: {slots}"
    gaps = [(a, b) for a, b in pairwise(slots) if b - a != step]
    assert not gaps, f"slots were lost: {gaps}"


def enqueued_runs(db: redis.Redis) -> set[str]:
    prefix = keys.enqueued("")
    return {key.removeprefix(prefix) for key in db.scan_iter(f"{prefix}*")}


def by_role(db: redis.Redis, first: Beat, second: Beat) -> tuple[Beat, Beat]:
    """(leader, standby): the lock holds the leader's id, which names its pid."""
    leads = f":{first.pid}:" in str(db.get(keys.BEAT_LEADER))
    return (first, second) if leads else (second, first)


def test_two_beats_enqueue_every_slot_exactly_once(
    beats: Callable[[], Beat], db: redis.Redis, schedules_file: Path
) -> None:
    write_schedules(
        schedules_file,
        {"name": "every-second", "cron": EVERY_SECOND},
        {"name": "every-2s", "cron": "* * * * * */2", "jitter": "1s"},
        {"name": "dormant", "cron": EVERY_SECOND, "enabled": False},
    )
    first, second = beats(), beats()
    wait_until(lambda: len(slots_of(db, "every-second")) >= 14, first.log)
    leader, standby = by_role(db, first, second)
    standby.stop()  # first, or it would take over from the leader as that one stops
    leader.stop()

    found = queued(db)
    assert set(found) == {"every-second", "every-2s"}  # a disabled schedule never fires
    assert_every_slot_once(found["every-second"])
    assert_every_slot_once(found["every-2s"], 2 * SECOND)
    assert sum(len(slots) for slots in found.values()) >= 20
    runs = {f"{name}@{slot.isoformat()}" for name, slots in found.items() for slot in slots}
    assert enqueued_runs(db) == runs
    # One beat led throughout; the other only stood by.
    assert "enqueued slot" not in standby.log() and " stands by" in standby.log()
    assert leader.log().count("enqueued slot") == len(runs)


def test_triggers_and_a_running_beat_queue_each_slot_once(
    beats: Callable[[], Beat], db: redis.Redis, beat_url: str, schedules_file: Path
) -> None:
    write_schedules(schedules_file, {"name": "every-second", "cron": EVERY_SECOND})
    beat = beats()
    wait_until(lambda: len(slots_of(db, "every-second")) >= 2, beat.log)
    env = {**environment(beat_url), "TRIGGER_TOKEN": "t0ken", "SCHEDULES_FILE": str(schedules_file)}
    asked: dict[str, str] = {}  # task id: how it was asked
    with TestClient(create_app(Settings.from_env(env))) as client:
        ask = partial(
            client.post, "/triggers/every-second", headers={"Authorization": "Bearer t0ken"}
        )
        # A slot beat has enqueued already, then the current slot (beat's next, or its last).
        old = slots_of(db, "every-second")[0].isoformat()
        reply = ask(json={"slot": old})
        assert reply.status_code == 202 and reply.json()["duplicate"]
        asked[reply.json()["task_id"]] = old
        for _ in range(8):
            reply = ask()
            assert reply.status_code == 202
            asked[reply.json()["task_id"]] = "current"
            time.sleep(0.3)
    before = len(slots_of(db, "every-second"))
    wait_until(lambda: len(slots_of(db, "every-second")) >= before + 2, beat.log)
    beat.stop()

    assert_every_slot_once(slots_of(db, "every-second"))
    queued_ids = {json.loads(raw)["headers"]["id"] for raw in db.lrange(QUEUE, 0, -1)}
    assert set(asked) <= queued_ids  # each trigger's task is the slot's one task


def test_a_killed_leader_is_replaced_within_a_lock_ttl_and_no_slot_is_lost(
    beats: Callable[[], Beat], db: redis.Redis, schedules_file: Path
) -> None:
    write_schedules(schedules_file, {"name": "every-second", "cron": EVERY_SECOND})
    first, second = beats(), beats()
    wait_until(lambda: len(slots_of(db, "every-second")) >= 3)
    leader, standby = by_role(db, first, second)

    leader.kill()
    killed = time.monotonic()
    wait_until(lambda: f":{standby.pid}:" in str(db.get(keys.BEAT_LEADER)), standby.log)
    assert time.monotonic() - killed <= LOCK_TTL + 0.5

    before = len(slots_of(db, "every-second"))
    wait_until(lambda: len(slots_of(db, "every-second")) >= before + 3, standby.log)
    standby.stop()
    assert_every_slot_once(slots_of(db, "every-second"))
    assert db.lrange(keys.skipped("every-second"), 0, -1) == []


def test_a_paused_leader_stops_enqueueing_once_another_beat_took_over(
    beats: Callable[[], Beat], db: redis.Redis, schedules_file: Path
) -> None:
    write_schedules(schedules_file, {"name": "every-second", "cron": EVERY_SECOND})
    first, second = beats(), beats()
    wait_until(lambda: len(slots_of(db, "every-second")) >= 2)
    frozen, successor = by_role(db, first, second)

    os.kill(frozen.pid, signal.SIGSTOP)  # a frozen VM, a long GC pause
    wait_until(lambda: f":{successor.pid}:" in str(db.get(keys.BEAT_LEADER)), successor.log)
    fired = frozen.log().count("enqueued slot")
    os.kill(frozen.pid, signal.SIGCONT)
    wait_until(lambda: "lost the leader lock" in frozen.log(), frozen.log)
    before = len(slots_of(db, "every-second"))
    wait_until(lambda: len(slots_of(db, "every-second")) >= before + 2, successor.log)
    frozen.stop()  # first: it stands by now
    successor.stop()

    # At most the enqueue it was in the middle of when frozen: the documented window, which
    # the slot's `enqueued` key absorbs.
    assert frozen.log().count("enqueued slot") <= fired + 1
    assert_every_slot_once(slots_of(db, "every-second"))


def test_after_downtime_the_newest_missed_slot_runs_once_and_older_ones_are_skipped(
    beats: Callable[[], Beat], db: redis.Redis, schedules_file: Path
) -> None:
    write_schedules(schedules_file, {"name": "every-second", "cron": EVERY_SECOND})
    beat = beats()
    wait_until(lambda: len(slots_of(db, "every-second")) >= 2, beat.log)
    beat.stop()
    stopped = len(slots_of(db, "every-second"))
    time.sleep(GRACE.total_seconds() + 2)  # down for longer than a handover takes

    restarted = beats()
    wait_until(lambda: len(slots_of(db, "every-second")) >= stopped + 2, restarted.log)
    restarted.stop()

    slots = slots_of(db, "every-second")
    skipped = [
        datetime.fromisoformat(str(s)) for s in db.lrange(keys.skipped("every-second"), 0, -1)
    ]
    assert len(skipped) >= 2
    assert skipped == sorted(skipped, reverse=True)  # newest first
    # The skipped slots fill the gap, except its newest slot, which ran once.
    assert_every_slot_once(sorted(slots + skipped))
    assert slots[stopped - 1] < skipped[-1] and skipped[0] + SECOND == slots[stopped]
    assert "skipped" in restarted.log()


def test_a_broken_edit_keeps_the_last_good_schedules_and_shows_its_errors(
    beats: Callable[..., Beat], db: redis.Redis, schedules_file: Path, sentry: HttpSink
) -> None:
    good = {"name": "alpha", "cron": EVERY_SECOND}
    write_schedules(schedules_file, good)
    beat = beats(SENTRY_DSN=sentry.url("/1").replace("http://", "http://publickey@"))
    wait_until(lambda: len(slots_of(db, "alpha")) >= 2, beat.log)

    write_schedules(schedules_file, good, {"name": "beta", "cron": "61 * * * *"})
    wait_until(lambda: db.get(keys.BEAT_ERRORS), beat.log)
    errors = json.loads(str(db.get(keys.BEAT_ERRORS)))["errors"]
    assert len(errors) == 1 and str(schedules_file) in errors[0] and "(beta).cron" in errors[0]
    assert "is not valid; beat runs the last good 1 schedules" in beat.log()
    wait_until(lambda: any(b"(beta).cron" in raw for raw in sentry.raw), beat.log)  # reported
    broken = len(slots_of(db, "alpha"))
    wait_until(lambda: len(slots_of(db, "alpha")) >= broken + 2, beat.log)

    write_schedules(schedules_file, good)
    wait_until(lambda: db.get(keys.BEAT_ERRORS) is None, beat.log)
    beat.stop()
    assert_every_slot_once(slots_of(db, "alpha"))
    assert "beta" not in queued(db)


def test_a_removed_schedule_stops_and_a_changed_cron_starts_at_its_next_slot(
    beats: Callable[[], Beat], db: redis.Redis, schedules_file: Path
) -> None:
    stays = {"name": "stays", "cron": EVERY_SECOND}
    write_schedules(
        schedules_file,
        stays,
        {"name": "goes", "cron": EVERY_SECOND},
        {"name": "changes", "cron": "0 0 1 1 *"},  # New Year only: its last slot is months old
    )
    beat = beats()
    wait_until(lambda: len(slots_of(db, "goes")) >= 2, beat.log)

    write_schedules(schedules_file, stays, {"name": "changes", "cron": EVERY_SECOND})
    edited = datetime.now(UTC)
    wait_until(lambda: "beat runs 2 schedules" in beat.log(), beat.log)
    time.sleep(1)  # a slot of `goes` may have been on its way as the file changed
    gone = len(slots_of(db, "goes"))
    wait_until(lambda: len(slots_of(db, "changes")) >= 3, beat.log)
    beat.stop()

    assert len(slots_of(db, "goes")) == gone
    changes = slots_of(db, "changes")
    assert_every_slot_once(changes)
    assert changes[0] > edited - SECOND  # no backlog since New Year, nothing skipped
    assert db.lrange(keys.skipped("changes"), 0, -1) == []
    assert_every_slot_once(slots_of(db, "stays"))


def test_beat_refuses_a_redis_that_may_evict_its_keys(schedules_file: Path) -> None:
    write_schedules(schedules_file, {"name": "every-second", "cron": EVERY_SECOND})
    with RedisServer() as server:
        client = redis.Redis(port=server.port)
        client.config_set("maxmemory-policy", "allkeys-lru")
        environment = beat_environment(server.url, schedules_file)
        done = subprocess.run(BEAT, cwd=ROOT, env=environment, capture_output=True, text=True)
        assert client.get(keys.BEAT_LEADER) is None
        client.close()
    assert done.returncode != 0
    assert (
        "'allkeys-lru'" in done.stderr and "CONFIG SET maxmemory-policy noeviction" in done.stderr
    )


def add_beat_user(client: redis.Redis, password: str, *commands: str) -> None:
    """A Redis user `beat` with this password, allowed these commands on every key."""
    passwords = [f"+{password}"]
    client.acl_setuser(
        "beat", enabled=True, passwords=passwords, keys=["*"], channels=["*"], commands=commands
    )


def test_beat_waits_for_redis_and_runs_once_it_answers(schedules_file: Path) -> None:
    write_schedules(schedules_file, {"name": "every-second", "cron": EVERY_SECOND})
    server = RedisServer()  # not started yet: nothing listens on its port
    beat = Beat(f"redis://beat:hunter2-beat@127.0.0.1:{server.port}/0", schedules_file)
    beat.spawn(BEAT, beat.env)
    try:
        beat.wait_until(lambda: beat.log().count("trying again in") >= 2, "beat did not wait")
        server.start()
        client = redis.Redis(port=server.port)
        add_beat_user(client, "hunter2-beat", "+@all")
        beat.wait_until(lambda: client.llen(QUEUE) >= 1, "beat enqueued nothing once Redis ran")
        client.close()
    finally:
        beat.stop()
        server.stop()
    log = beat.log()
    beat.log_path.unlink()
    waited = [line for line in log.splitlines() if "trying again in" in line]
    assert f"cannot reach Redis at redis://beat:***@127.0.0.1:{server.port}/0 (" in waited[0]
    assert "trying again in 1s (attempt 1)" in waited[0]
    assert "Traceback" not in log and "hunter2" not in log


def test_beat_warns_and_runs_where_it_may_not_read_the_eviction_policy(
    schedules_file: Path,
) -> None:
    write_schedules(schedules_file, {"name": "every-second", "cron": EVERY_SECOND})
    with RedisServer() as server:
        client = redis.Redis(port=server.port)
        add_beat_user(client, "secret", "+@all", "-config")
        beat = Beat(f"redis://beat:secret@127.0.0.1:{server.port}/0", schedules_file).start()
        try:
            wait_until(lambda: client.llen(QUEUE) >= 1, beat.log)
        finally:
            beat.stop()
            client.close()
    assert "cannot read Redis' maxmemory-policy" in beat.log()
    beat.log_path.unlink()


def schedule(cron: str, **fields: Any) -> Schedule:
    return Schedule(name="s", cron=cron, channels=("#eng",), **fields)


HOURLY = schedule("0 * * * *")
NOON = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_a_slot_late_by_a_handover_runs() -> None:
    due = catch_up(HOURLY, NOON, NOON + GRACE, GRACE)
    assert (due.fire, due.skipped, due.newest) == (NOON, (), NOON)


def test_after_an_outage_the_newest_slot_within_catchup_runs_and_older_are_skipped() -> None:
    now = NOON + timedelta(hours=3, minutes=20)
    due = catch_up(HOURLY, NOON, now, GRACE)
    hours = [NOON + timedelta(hours=h) for h in range(4)]
    assert (due.fire, due.skipped, due.newest) == (hours[3], tuple(hours[:3]), hours[3])


def test_after_an_outage_longer_than_catchup_nothing_runs() -> None:
    short = schedule("0 * * * *", catchup=timedelta(minutes=10))
    now = NOON + timedelta(hours=1, minutes=20)
    due = catch_up(short, NOON, now, GRACE)
    hours = (NOON, NOON + timedelta(hours=1))
    assert (due.fire, due.skipped, due.newest) == (None, hours, hours[1])


def test_jitter_delays_a_slot_without_making_it_late() -> None:
    jittered = schedule("0 * * * *", jitter=timedelta(minutes=30), catchup=timedelta(0))
    now = NOON + jittered.jitter_offset + SECOND
    assert catch_up(jittered, NOON, now, GRACE).fire == NOON


def test_a_long_outage_of_a_per_second_cron_walks_only_the_recorded_slots(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    steps = []
    step_back = Schedule.previous_slot

    def counted(self: Schedule, slot: datetime) -> datetime:
        steps.append(slot)
        return step_back(self, slot)

    monkeypatch.setattr(Schedule, "previous_slot", counted)
    now = NOON + timedelta(days=365)
    due = catch_up(schedule(EVERY_SECOND), NOON, now, GRACE)
    assert len(steps) <= keys.SKIPPED_LENGTH + 1  # not 31 million
    assert due.fire == now
    newest = [now - SECOND * n for n in range(keys.SKIPPED_LENGTH, 0, -1)]
    assert due.skipped == tuple(newest)


def tick_for(seconds: float, beat_url: str, schedules_file: Path) -> list[dict[str, object]]:
    """Tick every 0.3 s for `seconds`, as an external scheduler in a hurry would; what was
    enqueued."""
    found: list[dict[str, object]] = []
    client = redis.Redis.from_url(beat_url)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found += tick(client, load(schedules_file).values(), datetime.now(UTC)).enqueued
        time.sleep(0.3)
    client.close()
    return found


def test_ticks_and_a_running_beat_queue_each_slot_once(
    beats: Callable[[], Beat], db: redis.Redis, beat_url: str, schedules_file: Path
) -> None:
    write_schedules(schedules_file, {"name": "every-second", "cron": EVERY_SECOND})
    beat = beats()
    wait_until(lambda: len(slots_of(db, "every-second")) >= 2, beat.log)
    ticked = tick_for(4, beat_url, schedules_file)  # mostly finding that beat was first
    beat.stop()
    assert_every_slot_once(slots_of(db, "every-second"))
    queued_ids = {json.loads(raw)["headers"]["id"] for raw in db.lrange(QUEUE, 0, -1)}
    assert {entry["task_id"] for entry in ticked} <= queued_ids  # the slot's one task


def test_ticks_alone_run_each_due_slot_once(
    db: redis.Redis, beat_url: str, schedules_file: Path
) -> None:
    write_schedules(schedules_file, {"name": "every-second", "cron": EVERY_SECOND})
    ticked = tick_for(4, beat_url, schedules_file)  # the first tick starts the counting
    slots = slots_of(db, "every-second")
    assert len(slots) >= 2 and len(ticked) == len(slots)
    assert_every_slot_once(slots)  # ticking faster than the cron fires, none is skipped


def test_two_workers_with_embedded_beats_enqueue_each_slot_once(
    beat_url: str, db: redis.Redis, schedules_file: Path
) -> None:
    write_schedules(schedules_file, {"name": "every-second", "cron": EVERY_SECOND})
    env = {"SCHEDULES_FILE": str(schedules_file), "SLACK_API_URL": "http://127.0.0.1:9/api/"}
    workers = [Worker(beat_url, env, node=f"embedded{n}@%h", embedded_beat=True) for n in (1, 2)]
    for worker in workers:
        worker.start()
    try:
        wait_until(lambda: len(enqueued_runs(db)) >= 6, lambda: workers[0].log()[-2000:], 60)
        time.sleep(1)  # both logs have caught up with what their beats did
        logs = [worker.log() for worker in workers]
    finally:
        for worker in workers:
            worker.stop()
    runs = sorted(enqueued_runs(db))
    slots = [datetime.fromisoformat(run.split("@", 1)[1]) for run in runs]
    assert_every_slot_once(sorted(slots))
    # One embedded beat led; the other stood by.
    leading = sorted(log.count("enqueued slot") for log in logs)
    assert leading[0] == 0 and leading[1] > 0, leading
    assert sum(" stands by" in log for log in logs) == 1


def test_a_paused_schedule_under_a_running_beat_skips_its_slots_and_resumes_by_itself(
    beats: Callable[[], Beat], db: redis.Redis, beat_url: str, schedules_file: Path
) -> None:
    write_schedules(schedules_file, {"name": "every-second", "cron": EVERY_SECOND})
    until = datetime.now(UTC) + timedelta(seconds=5)
    pause.pause(db, "every-second", "U0OWNER", datetime.now(UTC), until, "freeze")
    # Slack is a closed port: a run that is not skipped starts (claims its slot) and retries.
    env = {"SCHEDULES_FILE": str(schedules_file), "SLACK_API_URL": "http://127.0.0.1:9/api/"}
    worker = Worker(beat_url, env).start()
    beat = beats()
    try:

        def skipped() -> list[dict[str, object]]:
            records = [json.loads(raw) for raw in db.lrange(keys.history("every-second"), 0, -1)]
            return [r for r in records if r.get("reason") == "paused"]

        wait_until(lambda: len(skipped()) >= 2, beat.log)
        after = until + 2 * SECOND
        later = f"every-second@{after.replace(microsecond=0).isoformat()}"
        wait_until(lambda: db.exists(keys.claim(later)), lambda: worker.log()[-2000:], 30)
    finally:
        beat.stop()
        worker.stop()
    assert all(datetime.fromisoformat(str(r["slot"])) < until for r in skipped())
    assert all(r["status"] == "skipped" and not r["manual"] for r in skipped())
