"""`scripts/bench digest`: a whole digest of one big channel against paging through it, in one run.

The simulator serves `big_channel(N)` from a process of its own, so both sides are timed on the
client only. The baseline pages `conversations.history` (999 a page, the most Slack allows) with
slack_sdk's `WebClient` as it ships and does nothing else; ours is `pipeline.build` with the
client a worker uses and a private Redis for its caches and shared pages (flushed before every
run, so each run resolves names and fetches pages as a cold worker does), then the Slack and
email renders. Rounds alternate, and the median counts. Memory is a separate pass under
tracemalloc, which slows Python too much to share a pass with the timings.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.error import URLError

import redis
import uvicorn
from slack_sdk import WebClient

from jobs.digest.pipeline import build, scheduled
from jobs.digest.render.blocks import slack_messages
from jobs.digest.render.email import email_message
from jobs.digest.unsubscribe import link_key
from jobs.queue import Run
from jobs.scheduling.slots import Schedule
from jobs.slack.api import Client
from sandbox.redis_server import RedisServer, free_port
from sandbox.server import HOST
from sandbox.slack import SlackSimulator
from sandbox.workspace import BOT_TOKEN, DEMO_END, big_channel

ROOT = Path(__file__).resolve().parent.parent
PAGE = 999
SMALL = 10_000  # memory is also reported here, to show it does not grow with N
GOAL_RATIO = 1.3
GOAL_MIB = 64.0
MIB = 1024 * 1024
SCHEDULE = Schedule(
    name="firehose", cron="0 0 * * 1", channels=("#firehose",), window=timedelta(days=7)
)
SLOT = DEMO_END  # big_channel's messages all fall in the week before it


def serve(messages: int, port: int) -> None:
    """The simulator's process: `big_channel(messages)` on `port` until terminated."""
    simulator = SlackSimulator(big_channel(messages))
    uvicorn.run(simulator.app, host=HOST, port=port, log_level="warning", access_log=False)


@contextmanager
def simulator(messages: int) -> Iterator[str]:
    """The base URL of a simulator serving `messages` messages in another process."""
    port = free_port()
    code = f"from bench.digest import serve; serve({messages}, {port})"
    process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    url = f"http://{HOST}:{port}/api/"
    try:
        probe = WebClient(token=BOT_TOKEN, base_url=url, timeout=5, retry_handlers=[])
        deadline = time.monotonic() + 60
        while True:
            try:
                probe.auth_test()
                break
            except (URLError, ConnectionError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the simulator did not serve on {url}") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait()


def client_for(url: str) -> WebClient:
    """slack_sdk's `WebClient` as it ships, with the options `jobs.slack.api.web_client` gives."""
    return WebClient(token=BOT_TOKEN, base_url=url, timeout=30, retry_handlers=[])


def worker_client(url: str) -> Client:
    """The client a worker runs a digest with (`jobs.slack.api.web_client`, without Settings)."""
    return Client(None, token=BOT_TOKEN, base_url=url, timeout=30, retry_handlers=[])


def baseline(client: WebClient, channel: str) -> int:
    """Page through the window's history and keep nothing; the count of messages seen."""
    window = SCHEDULE.window_for(SLOT)
    params: dict[str, Any] = {
        "channel": channel,
        "oldest": window.oldest,
        "latest": window.latest,
        "limit": PAGE,
    }
    seen = 0
    while True:
        page = client.api_call("conversations.history", params=params)
        seen += len(page["messages"])
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return seen
        params["cursor"] = cursor


def ours(client: WebClient, cache: redis.Redis) -> int:
    """Collect, summarize and render the whole digest; the count of messages collected."""
    cache.flushdb()
    collected = 0

    def progress(stage: str, messages: int) -> None:
        nonlocal collected
        collected = messages

    built = build(client, cache, scheduled(cache, SCHEDULE, SLOT), progress=progress)
    slack_messages(built.digest, built.names)
    mail = email_message(
        built.digest,
        built.names,
        schedule=SCHEDULE.name,
        sender="digests@example.com",
        recipient="team@example.com",
        run_id=Run(SCHEDULE.name, SLOT).id,
        public_url="https://digests.example.com/",
        link_key=link_key(cache),
        now=SLOT,
    )
    mail.as_bytes()  # what sending does: the MIME encoding is part of the render
    return collected


def timed(work: Callable[[], int]) -> tuple[float, int]:
    gc.collect()
    started = time.perf_counter()
    seen = work()
    return time.perf_counter() - started, seen


def peak_growth(work: Callable[[], int]) -> float:
    """MiB allocated at the peak of `work`, above what was allocated when it started."""
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        work()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return (peak - before) / MIB


@dataclass(frozen=True)
class Figures:
    messages: int
    baseline_s: float
    ours_s: float
    ratios: list[float]  # ours over the baseline of the same round
    baseline_mib: float
    ours_mib: float

    @property
    def ratio(self) -> float:
        return self.ours_s / self.baseline_s


def measure(messages: int, rounds: int, cache: redis.Redis) -> Figures:
    with simulator(messages) as url:
        client = client_for(url)
        channel = next(
            c["id"] for c in client.conversations_list()["channels"] if c["name"] == "firehose"
        )
        run_baseline = partial(baseline, client, channel)
        run_ours = partial(ours, worker_client(url), cache)
        run_baseline()  # warm-up: imports, templates, the simulator's first pages
        run_ours()
        baseline_times, ours_times = [], []
        for _ in range(rounds):
            seconds, paged = timed(run_baseline)
            baseline_times.append(seconds)
            seconds, collected = timed(run_ours)
            ours_times.append(seconds)
            if paged != messages or collected != messages:
                raise RuntimeError(
                    f"expected {messages:,} messages: the baseline saw {paged:,}, "
                    f"ours collected {collected:,}"
                )
        return Figures(
            messages,
            statistics.median(baseline_times),
            statistics.median(ours_times),
            [o / b for o, b in zip(ours_times, baseline_times, strict=True)],
            peak_growth(run_baseline),
            peak_growth(run_ours),
        )


def line(figures: Figures) -> str:
    return (
        f"{figures.messages:>9,}  {figures.baseline_s:>10.3f}  {figures.ours_s:>8.3f}"
        f"  {figures.ratio:>6.2f}x  {figures.baseline_mib:>13.1f}  {figures.ours_mib:>9.1f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench digest")
    parser.add_argument("--messages", type=int, default=100_000, help="messages in the channel")
    parser.add_argument("--rounds", type=int, default=11, help="timed rounds of each, alternating")
    args = parser.parse_args(argv)

    sizes = sorted({min(SMALL, args.messages), args.messages})
    with RedisServer() as server:
        cache = redis.Redis.from_url(server.url)
        try:
            results = [measure(n, args.rounds, cache) for n in sizes]
        finally:
            cache.close()
    print(f"median of {args.rounds} alternating rounds; memory: tracemalloc peak growth, own pass")
    print(" messages  baseline s    ours s   ratio  baseline MiB   ours MiB")
    for figures in results:
        print(line(figures))
    big = results[-1]
    print(
        f"ratio            {big.ratio:.2f}x the baseline at {big.messages:,} messages"
        f" (goal <= {GOAL_RATIO}x)"
    )
    print(
        f"per round        {min(big.ratios):.2f}x to {max(big.ratios):.2f}x"
        f" (median {statistics.median(big.ratios):.2f}x)"
    )
    print(
        f"memory           {big.ours_mib:.1f} MiB peak growth at {big.messages:,} messages"
        f" (goal <= {GOAL_MIB:g} MiB)"
    )
    met = big.ratio <= GOAL_RATIO and big.ours_mib <= GOAL_MIB
    print("goal             " + ("met" if met else "NOT met"))
    return 0
