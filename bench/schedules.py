"""`scripts/bench schedules`: a big schedules file, and beat's cost per fire against celery beat's.

N schedules (default 10,000: weekly, weekday, daily, hourly and every-15/30-minute crons in eight
zones, mostly on the hour as digests are, a tenth with a minute of jitter) are written to a file,
which is loaded and validated (best of three). Then both schedulers run through the same
simulated half hour from just before an hour (so its burst of on-the-hour slots is in it), driven
as `celery beat` drives them (`tick()`, then sleep what it returned), on a clock that runs at real
speed while a tick works and jumps over the sleeps: lateness (enqueue time minus the slot's time,
plus its jitter for ours) is what the schedulers' own work delays a fire by.

Enqueueing is faked on both sides (it records the fire), so what is timed is the scheduler: ours
with its lock, cursors and skips in a private Redis (its client's CPU counts, the server's does
not); celery's `PersistentScheduler` (the default of `celery beat`) over the same crons as
`crontab` entries moved to UTC with each zone's offset on that day (crontab has no zone per
entry), its shelve file in a temporary directory. Both log their line per fire at INFO, into
/dev/null. Start-up (ours: reading the file, taking the lock, planning every schedule; celery's:
building its entries and heap) is timed apart. CPU is this process's `time.process_time()`.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from celery import Celery
from celery.beat import PersistentScheduler
from celery.schedules import crontab

from sandbox.redis_server import RedisServer

ZONES = (
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "America/Los_Angeles",
    "Asia/Tokyo",
    "Asia/Kolkata",
    "Australia/Sydney",
)
# A Tuesday (weekday and weekly crons fire), just before the hour's burst of on-the-hour slots.
START = datetime(2026, 11, 24, 4, 59, 30, tzinfo=UTC)
GOAL_LOAD_SECONDS = 1.0
GOAL_P99_SECONDS = 1.0
GOAL_RATIO = 0.5


@dataclass(frozen=True)
class Spec:
    """One generated schedule: its cron in its zone, and the same instants as a UTC crontab."""

    name: str
    zone: str
    minute: str
    hour: str
    days: str  # day of week, 0 = Sunday, as croniter and crontab both read it

    @property
    def cron(self) -> str:
        return f"{self.minute} {self.hour} * * {self.days}"

    def utc(self) -> tuple[str, str, str]:
        """(minute, hour, day_of_week) in UTC on START's day."""
        offset = ZoneInfo(self.zone).utcoffset(START.replace(tzinfo=None))
        shift = int(offset.total_seconds() // 60) if offset else 0
        if self.hour == "*":  # hourly or every n minutes: only a part-hour offset moves it
            if not self.minute.isdigit():
                return self.minute, "*", self.days
            return str((int(self.minute) - shift) % 60), "*", self.days
        minutes = int(self.hour) * 60 + int(self.minute) - shift
        day, minutes = divmod(minutes, 24 * 60)
        days = (
            self.days
            if self.days == "*"
            else ",".join(str((int(d) + day) % 7) for d in expand(self.days))
        )
        return str(minutes % 60), str(minutes // 60), days


def expand(days: str) -> list[str]:
    first, _, last = days.partition("-")
    return [str(d) for d in range(int(first), int(last or first) + 1)]


def generate(count: int, seed: int = 7) -> list[Spec]:
    """A mix like real digests: most daily or weekly at business hours, on the hour."""
    rng = random.Random(seed)
    specs = []
    for index in range(count):
        zone = rng.choice(ZONES)
        minute = rng.choices(["0", "15", "30", "45"], weights=[70, 10, 15, 5])[0]
        hour = str(rng.randint(7, 18))
        kind = rng.choices(
            ["weekdays", "weekly", "daily", "hourly", "half-hourly", "quarter-hourly"],
            weights=[32, 26, 22, 12, 5, 3],
        )[0]
        name = f"{kind}-{index}"
        if kind == "weekdays":
            specs.append(Spec(name, zone, minute, hour, "1-5"))
        elif kind == "weekly":
            specs.append(Spec(name, zone, minute, hour, str(rng.randint(1, 5))))
        elif kind == "daily":
            specs.append(Spec(name, zone, minute, hour, "*"))
        elif kind == "hourly":
            specs.append(Spec(name, zone, minute, "*", "*"))
        else:
            step = "*/30" if kind == "half-hourly" else "*/15"
            specs.append(Spec(name, zone, step, "*", "*"))
    return specs


def write_file(specs: list[Spec], path: Path) -> None:
    lines = ["version: 1", "defaults: {skip_if_quiet: true}", "schedules:"]
    for spec in specs:
        lines.append(f"  - name: {spec.name}")
        lines.append(f'    cron: "{spec.cron}"')
        lines.append(f"    timezone: {spec.zone}")
        lines.append('    channels: ["#eng"]')
        lines.append('    deliver: {slack: ["#eng-digest"], email: ["eng@example.com"]}')
        if spec.name.endswith("7"):  # a tenth spread their start over a minute
            lines.append("    jitter: 60s")
    path.write_text("\n".join(lines) + "\n")


class Clock:
    """Simulated time: runs at real speed while code works, and jumps forward over sleeps."""

    def __init__(self) -> None:
        self.offset = 0.0

    def start(self, moment: datetime) -> Clock:
        self.offset = moment.timestamp() - time.perf_counter()
        return self

    def timestamp(self) -> float:
        return time.perf_counter() + self.offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp(), UTC)

    def sleep(self, seconds: float) -> None:
        self.offset += seconds


CLOCK = Clock()


def simulated_now() -> datetime:
    """The clock for celery's crontabs: its shelve pickles them, and a function by its name."""
    return CLOCK.now()


@dataclass
class Run:
    name: str
    startup_cpu: float
    cpu: float
    fires: int
    lateness: list[float]

    @property
    def cpu_per_fire_us(self) -> float:
        return self.cpu / self.fires * 1e6


def drive(tick: Callable[[], float], clock: Clock, end: float) -> float:
    """Tick until simulated `end`, sleeping what each tick asks; the CPU seconds it took."""
    started = time.process_time()
    while clock.timestamp() < end:
        interval = tick()
        if interval and interval > 0:
            clock.sleep(interval)
    return time.process_time() - started


def run_ours(path: Path, redis: RedisServer, clock: Clock, end: float) -> Run:
    from jobs.celery import app
    from jobs.config import get_settings
    from jobs.connections import shared_redis
    from jobs.scheduling.beat import Scheduler
    from jobs.scheduling.slots import Schedule

    # Settings are read once a process: read them again, so that beat uses the private Redis.
    os.environ["REDIS_URL"] = redis.url
    os.environ["SCHEDULES_FILE"] = str(path)
    get_settings.cache_clear()
    shared_redis.cache_clear()

    fired: list[tuple[float, float]] = []  # (when it was due, when it was enqueued)

    class Simulated(Scheduler):
        def now(self) -> datetime:
            return clock.now()

        def enqueue(self, schedule: Schedule, slot: datetime) -> None:
            fired.append(((slot + schedule.jitter_offset).timestamp(), clock.timestamp()))

    started = time.process_time()
    scheduler = Simulated(app=app)
    assert scheduler.client.connection_pool.connection_kwargs["port"] == redis.port
    clock.sleep(scheduler.tick())  # reads the file, takes the lock, plans every schedule
    startup = time.process_time() - started
    cpu = drive(scheduler.tick, clock, end)
    scheduler.close()
    return Run("ours", startup, cpu, len(fired), [now - due for due, now in fired])


def run_celery(specs: list[Spec], clock: Clock, end: float, directory: Path) -> Run:
    from jobs.scheduling.slots import Schedule

    app = Celery("bench", set_as_current=False)
    app.conf.update(timezone="UTC", enable_utc=True, result_expires=None)
    fired: list[tuple[str, float]] = []

    class Simulated(PersistentScheduler):  # type: ignore[misc]
        producer = None  # nothing is published

        def apply_async(self, entry: Any, producer: Any = None, advance: bool = True, **_: Any):
            fired.append((entry.name, clock.timestamp()))

    crons, entries = {}, {}
    for spec in specs:
        minute, hour, days = spec.utc()
        crons[spec.name] = Schedule(spec.name, f"{minute} {hour} * * {days}", ("#x",))
        entries[spec.name] = {
            "task": "jobs.tasks.run_digest",
            "schedule": crontab(minute, hour, days, nowfun=simulated_now, app=app),
            "args": (spec.name,),
        }
    app.conf.beat_schedule = entries
    started = time.process_time()
    scheduler = Simulated(app=app, schedule_filename=str(directory / "celerybeat-schedule"))
    scheduler.tick()  # builds the heap; nothing is due at the start
    startup = time.process_time() - started
    cpu = drive(scheduler.tick, clock, end)
    scheduler.close()
    # When each fire was due: its crontab's newest instant at or before it (not timed).
    lateness = [
        now - crons[name].latest_slot(datetime.fromtimestamp(now, UTC)).timestamp()
        for name, now in fired
    ]
    return Run("celery beat", startup, cpu, len(fired), lateness)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def line(run: Run) -> str:
    late = [
        seconds * 1000
        for seconds in (
            statistics.median(run.lateness),
            percentile(run.lateness, 0.99),
            max(run.lateness),
        )
    ]
    return (
        f"{run.name:<12} {run.fires:>7,} {run.cpu:>8.2f} {run.cpu_per_fire_us:>12.0f}"
        + "".join(f" {ms:>11.1f}" for ms in late)
        + f" {run.startup_cpu:>12.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench schedules")
    parser.add_argument("--schedules", type=int, default=10_000)
    parser.add_argument("--minutes", type=float, default=30.0, help="simulated minutes")
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 - lives to the end
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    with tempfile.TemporaryDirectory(prefix="digests-bench-") as directory:
        measure(args.schedules, args.minutes, Path(directory))
    return 0


def measure(count: int, minutes: float, work: Path) -> None:
    """Write the file, time its load, run both schedulers through the period; print it all."""
    from jobs.scheduling.file import load

    specs = generate(count)
    path = work / "schedules.yaml"
    write_file(specs, path)
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        loaded = load(path)
        timings.append(time.perf_counter() - started)
    assert len(loaded) == count
    print(
        f"load             {min(timings):.3f} s to load and validate {count:,} schedules"
        f" ({path.stat().st_size / 1e6:.1f} MB; best of 3; goal <= {GOAL_LOAD_SECONDS:g} s)"
    )

    end = (START + timedelta(minutes=minutes)).timestamp()
    gc.collect()
    with RedisServer() as server:
        ours = run_ours(path, server, CLOCK.start(START), end)
    gc.collect()
    theirs = run_celery(specs, CLOCK.start(START), end, work)
    ratio = ours.cpu_per_fire_us / theirs.cpu_per_fire_us
    print(f"simulated        {minutes:g} minutes from {START:%Y-%m-%d %H:%M:%S} UTC")
    print(
        "scheduler      fires    CPU s  CPU/fire µs  late p50 ms      p99 ms      max ms"
        "  start CPU s"
    )
    print(line(ours))
    print(line(theirs))
    p99 = percentile(ours.lateness, 0.99)
    print(f"ratio            {ratio:.3f}x celery beat's CPU per fire (goal <= {GOAL_RATIO}x)")
    print(f"p99 lateness     {p99 * 1000:.1f} ms (goal <= {GOAL_P99_SECONDS * 1000:g} ms)")
    met = min(timings) <= GOAL_LOAD_SECONDS and p99 <= GOAL_P99_SECONDS and ratio <= GOAL_RATIO
    print("goal             " + ("met" if met else "NOT met"))
