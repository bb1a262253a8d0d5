"""`scripts/bench burst`: many schedules due at one slot, under Slack's rate limits.

S schedules each read 3 of 10 busy channels (so each channel is read by several of them; every
third schedule reads one day, the others the week) and post to one of them. All are queued at
one slot for a real worker (`celery -A jobs worker`, W processes) against a private Redis and
the Slack simulator enforcing Slack's limits over a shortened minute. The bound is what a burst
that fetched each distinct page once would need at the method's rate: distinct pages ÷ calls a
minute, for the slower of history and replies; the makespan (the slot to the last run's end) is
compared with it in the same run. Then the same under the 2025 limits (one call a minute, 15
messages a page) with fewer schedules.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis

from jobs.digest.ledger import Ledger, RunRecord
from jobs.queue import Run, enqueue, run_job
from jobs.scheduling.file import load
from sandbox.redis_server import RedisServer
from sandbox.service import terminate
from sandbox.slack import SlackSimulator
from sandbox.slack.limits import Limits
from sandbox.workspace import generate

ROOT = Path(__file__).resolve().parent.parent
CHANNELS = 10
READS = 3  # channels per schedule
PAGE = 100  # messages a history page holds under the tiers (Slack may serve fewer than asked)
PAGED = ("conversations.history", "conversations.replies")
SETUP = 15  # seconds to start the worker before the slot
GOALS = {"tiers": (1.5, 0.05), "2025": (2.0, None)}  # makespan ÷ bound, 429s ÷ calls


@dataclass(frozen=True)
class Mode:
    name: str
    schedules: int
    messages: int  # per channel, over the week before the slot
    minute: float  # seconds a Slack minute lasts

    @property
    def like_2025(self) -> bool:
        return self.name == "2025"

    @property
    def page(self) -> int | None:
        return None if self.like_2025 else PAGE


@dataclass(frozen=True)
class Outcome:
    records: list[RunRecord]
    makespan: float
    traffic: dict[str, dict[str, int]]
    bound: float


def schedules_file(folder: Path, names: list[str], count: int, seed: int, slot: datetime) -> Path:
    """`count` schedules due daily at `slot`, each reading `READS` of `names` and posting to
    the first it reads."""
    pick = random.Random(seed)
    lines = ["version: 1", "schedules:"]
    for i in range(count):
        read = pick.sample(names, READS)
        window = "24h" if i % 3 == 2 else "7d"
        listed = ", ".join(f'"#{name}"' for name in read)
        lines += [
            f"  - name: burst-{i}",
            f'    cron: "{slot.minute} {slot.hour} * * *"',
            f"    window: {window}",
            f"    channels: [{listed}]",
            f'    deliver: {{slack: ["#{read[0]}"]}}',
        ]
    path = folder / "schedules.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def start_worker(env: dict[str, str], workers: int, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "celery", "-A", "jobs", "worker", f"--concurrency={workers}"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"]
    with log.open("wb") as out:
        worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + 60
    while b"ready." not in log.read_bytes():
        if worker.poll() is not None or time.monotonic() > deadline:
            terminate(worker, 5)
            raise RuntimeError(f"the worker did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.1)
    return worker


def wait_for_records(cache: redis.Redis, runs: list[Run], timeout: float) -> list[RunRecord]:
    deadline = time.monotonic() + timeout
    while True:
        records = [Ledger(cache, run.id).record() for run in runs]
        if all(records):
            return [record for record in records if record is not None]
        if time.monotonic() > deadline:
            done = sum(record is not None for record in records)
            raise RuntimeError(f"only {done} of {len(runs)} runs ended in {timeout:g}s")
        time.sleep(0.2)


def bound(traffic: dict[str, dict[str, int]], limits: Limits) -> float:
    """Seconds to fetch each distinct history and replies page once at the method's rate."""
    needed = []
    for method in PAGED:
        pages = traffic.get(method, {}).get("distinct pages", 0)
        rate = limits.per_minute(method) or 0
        if pages and rate:
            needed.append(pages / rate * limits.minute)
    return max(needed, default=0.0)


def burst(mode: Mode, workers: int, seed: int) -> Outcome:
    # The next minute at least SETUP seconds away: the runs are queued at it, as beat would.
    slot = (datetime.now(UTC) + timedelta(seconds=SETUP + 60)).replace(second=0, microsecond=0)
    workspace = generate(
        seed,
        channels=CHANNELS + 1,
        messages=mode.messages,
        start=slot - timedelta(days=7),
        end=slot,
    )
    names = [c["name"] for c in workspace.channels if c["is_member"]][:CHANNELS]
    with (
        tempfile.TemporaryDirectory(prefix="digests-burst-") as folder,
        RedisServer() as server,
        SlackSimulator(workspace) as sim,
    ):
        path = schedules_file(Path(folder), names, mode.schedules, seed, slot)
        env = {
            **os.environ,
            "REDIS_URL": server.url,
            "SLACK_BOT_TOKEN": sim.token,
            "SLACK_API_URL": sim.url,
            "SLACK_SIGNING_SECRET": "bench-signing-secret",
            "SCHEDULES_FILE": str(path),
            "LOG_LEVEL": "INFO",
        }
        worker = start_worker(env, workers, Path(folder) / "worker.log")
        cache = redis.Redis.from_url(server.url)
        try:
            sim.limit(mode.minute, like_2025=mode.like_2025, page=mode.page)
            schedules = load(path)
            runs = [Run(name, slot) for name in schedules]
            time.sleep(max(0.0, slot.timestamp() - time.time()))
            started = time.time()
            for run in runs:
                enqueue(cache, run_job(schedules[run.schedule], run))
            records = wait_for_records(cache, runs, timeout=60 * mode.minute + 600)
            makespan = max(record.finished for record in records) - started
            traffic = sim.summary()
            assert sim.limits is not None
            return Outcome(records, makespan, traffic, bound(traffic, sim.limits))
        finally:
            cache.close()
            terminate(worker, 15)


def report(mode: Mode, workers: int, outcome: Outcome) -> None:
    statuses = Counter(record.status for record in outcome.records)
    failed = [record for record in outcome.records if record.status != "delivered"]
    calls = sum(counts["calls"] for counts in outcome.traffic.values())
    limited = sum(counts["429"] for counts in outcome.traffic.values())
    ratio = outcome.makespan / outcome.bound if outcome.bound else float("inf")
    late = sorted(record.lateness or 0.0 for record in outcome.records)
    goal_ratio, goal_share = GOALS[mode.name]
    print(
        f"-- {mode.name}: {mode.schedules} schedules due at one slot, {workers} worker processes,"
        f" {mode.messages:,} messages a channel, a Slack minute of {mode.minute:g} s"
    )
    print(f"{'method':<24}{'calls':>8}{'429':>7}{'distinct pages':>16}")
    for method, counts in sorted(outcome.traffic.items()):
        pages = counts.get("distinct pages")
        shown = "" if pages is None else f"{pages:,}"
        print(f"{method:<24}{counts['calls']:>8,}{counts['429']:>7,}{shown:>16}")
    share = limited / calls if calls else 0.0
    goal = "" if goal_share is None else f" (goal <= {goal_share:.0%})"
    print(f"429s             {limited:,} of {calls:,} calls: {share:.1%}{goal}")
    print(f"runs             {dict(statuses)}; failed: {len(failed)} (goal 0)")
    for record in failed[:5]:
        print(f"  {record.run}: {record.status}: {record.error or record.destinations}")
    print(f"lateness         median {late[len(late) // 2]:.1f} s, longest {late[-1]:.1f} s")
    print(f"bound            {outcome.bound:.1f} s (distinct pages ÷ the method's rate)")
    print(f"makespan         {outcome.makespan:.1f} s")
    print(f"ratio            {ratio:.2f}x the bound (goal <= {goal_ratio}x)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench burst")
    parser.add_argument("--schedules", type=int, default=30, help="schedules under the tiers")
    parser.add_argument("--schedules-2025", type=int, default=6, help="under the 2025 limits")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--messages", type=int, default=1000, help="per channel, tiers")
    parser.add_argument("--messages-2025", type=int, default=60, help="per channel, 2025")
    parser.add_argument("--minute", type=float, default=30.0, help="seconds a Slack minute lasts")
    parser.add_argument("--minute-2025", type=float, default=2.0, help="the same, 2025")
    parser.add_argument("--only", choices=("tiers", "2025"), help="one of the two bursts")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    modes = [
        Mode("tiers", args.schedules, args.messages, args.minute),
        Mode("2025", args.schedules_2025, args.messages_2025, args.minute_2025),
    ]
    for mode in modes:
        if args.only in (None, mode.name):
            report(mode, args.workers, burst(mode, args.workers, args.seed))
    return 0
