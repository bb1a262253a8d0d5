"""`scripts/bench preview`: the whole `digests preview` process against a slack_sdk script that
pages the same history, each a fresh Python process, in one run.

This is what a person waits for at a terminal: interpreter start, imports, reading the schedules
file, collecting, summarizing and rendering, against the least any Python client of Slack's
history does (import slack_sdk, page `conversations.history` 999 at a time). The simulator serves
`big_channel(N)` from a process of its own; the names cache is a private Redis, flushed before
every preview so that each resolves names cold. Rounds alternate, and the median counts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from bench.digest import simulator
from sandbox.redis_server import RedisServer
from sandbox.workspace import BOT_TOKEN

ROOT = Path(__file__).resolve().parent.parent
GOAL_RATIO = 1.3
# Ten years back from now: big_channel's history, whatever day the benchmark runs.
WINDOW = "3650d"
SCHEDULES = f"""\
version: 1
schedules:
  - name: firehose
    cron: "0 0 * * MON"
    channels: ["#firehose"]
    window: {WINDOW}
    deliver: {{slack: ["#firehose"]}}
"""
# The baseline: a script that pages the window's history with slack_sdk and keeps nothing.
PAGING = """\
import sys, time
from slack_sdk import WebClient
url, channel, oldest = sys.argv[1:]
client = WebClient(token="{token}", base_url=url, timeout=30, retry_handlers=[])
params = {{"channel": channel, "oldest": oldest, "latest": f"{{time.time():.6f}}", "limit": 999}}
seen = 0
while True:
    page = client.api_call("conversations.history", params=params)
    seen += len(page["messages"])
    cursor = (page.get("response_metadata") or {{}}).get("next_cursor")
    if not cursor:
        break
    params["cursor"] = cursor
print(seen)
"""


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Seconds the process took from start to exit, and what it printed."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench preview")
    parser.add_argument("--messages", type=int, default=100_000, help="messages in the channel")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds of each, alternating")
    args = parser.parse_args(argv)

    with RedisServer() as server, simulator(args.messages) as url:
        folder = tempfile.TemporaryDirectory()
        path = Path(folder.name) / "schedules.yaml"
        path.write_text(SCHEDULES)
        env = {
            **os.environ,
            "REDIS_URL": server.url,
            "SCHEDULES_FILE": str(path),
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_API_URL": url,
            "LOG_LEVEL": "WARNING",
        }
        cache = redis.Redis.from_url(server.url)
        channel = firehose(url)
        oldest = f"{time.time() - 3650 * 86400:.6f}"
        paging = [sys.executable, "-c", PAGING.format(token=BOT_TOKEN), url, channel, oldest]
        preview = [sys.executable, "-m", "jobs", "preview", "firehose"]
        timed(paging, env)  # warm-up: the page cache, the simulator's first pages
        timed(preview, env)
        baseline_times, ours_times = [], []
        for _ in range(args.rounds):
            seconds, seen = timed(paging, env)
            baseline_times.append(seconds)
            cache.flushdb()
            seconds, shown = timed(preview, env)
            ours_times.append(seconds)
            if int(seen) != args.messages or "Subject: firehose: " not in shown:
                raise RuntimeError(f"expected {args.messages:,} messages and a digest")
        cache.close()
        folder.cleanup()
    baseline_s, ours_s = statistics.median(baseline_times), statistics.median(ours_times)
    ratios = [o / b for o, b in zip(ours_times, baseline_times, strict=True)]
    print(f"median of {args.rounds} alternating rounds, each a new process, {args.messages:,}")
    print(f"baseline         {baseline_s:.3f} s  (python -c: import slack_sdk, page the history)")
    print(f"ours             {ours_s:.3f} s  (digests preview firehose)")
    print(f"ratio            {ours_s / baseline_s:.2f}x the baseline (goal <= {GOAL_RATIO}x)")
    print(f"per round        {min(ratios):.2f}x to {max(ratios):.2f}x")
    print("goal             " + ("met" if ours_s / baseline_s <= GOAL_RATIO else "NOT met"))
    return 0


def firehose(url: str) -> str:
    """The ID of the benchmark's channel."""
    from slack_sdk import WebClient

    client = WebClient(token=BOT_TOKEN, base_url=url)
    channels = client.conversations_list()["channels"]
    return str(next(c["id"] for c in channels if c["name"] == "firehose"))
