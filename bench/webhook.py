"""`scripts/bench webhook`: `/slack/events` against a bare Starlette route, in one run.

Both apps run under one uvicorn process each, on the same machine, with the same load: wrk
`-t1 -c32 -d10s` replaying distinct signed 1,155-byte `event_callback`s (distinct event ids, so
every request is a real claim and push, not a duplicate).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2
import redis

from bench.load import Figures, run, write_requests
from sandbox.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-signing-secret"
GOAL_RATIO = 0.30
GOAL_P99_MS = 10.0


def serve(app: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", app, "--port", str(port)]
    command += ["--no-access-log", "--log-level", "warning"]
    # At INFO the app logs a line per request: to a discarded pipe, as to a PaaS log drain.
    quiet = subprocess.DEVNULL if env["LOG_LEVEL"] == "INFO" else None
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=quiet)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx2.get(url + "/healthz", timeout=1)
            return process, url
        except httpx2.HTTPError:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"{app} did not start") from None
            time.sleep(0.1)


def measure(
    app: str, env: dict[str, str], work: Path, args: argparse.Namespace, kind: str = "events"
) -> tuple[Figures, int]:
    """The figures of the measured run of `kind`, and how many task messages it left in Redis."""
    process, url = serve(app, env)
    queue = redis.Redis.from_url(env["REDIS_URL"])
    try:
        run(url, work / f"warm-up-{kind}.tsv", 2, args.connections)
        queue.delete("celery")
        figures = run(url, work / f"{kind}.tsv", args.seconds, args.connections)
        return figures, queue.llen("celery")
    finally:
        queue.close()
        process.terminate()
        process.wait()


def line(name: str, figures: Figures) -> str:
    return (
        f"{name:<16} {figures.requests_per_second:>10,.0f} req/s   p50 {figures.p50_ms:6.2f} ms"
        f"   p99 {figures.p99_ms:6.2f} ms   ({figures.requests:,} requests, "
        f"{figures.errors} not 2xx)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench webhook")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--events", type=int, default=250_000, help="distinct signed events")
    parser.add_argument(
        "--log-level",
        choices=["WARNING", "INFO"],
        default="INFO",
        help="the app's LOG_LEVEL: INFO, the default, logs a line per request; WARNING does not",
    )
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="digests-bench-"))
    # Warm-up and measured runs get events of their own, so no measured request is a duplicate.
    for kind in ("events", "interactions"):
        write_requests(work / f"warm-up-{kind}.tsv", args.events, 50_000, SECRET, kind)
        write_requests(work / f"{kind}.tsv", 0, args.events, SECRET, kind)
    with RedisServer() as server:
        env = {
            **os.environ,
            "REDIS_URL": server.url,
            "SLACK_SIGNING_SECRET": SECRET,
            "LOG_LEVEL": args.log_level,
        }
        bare, _ = measure("bench.bare:app", env, work, args)
        ours, queued = measure("webhook:app", env, work, args)
        clicks, clicked = measure("webhook:app", env, work, args, "interactions")
    ratio = ours.requests_per_second / bare.requests_per_second
    print(line("bare route", bare))
    print(line("/slack/events", ours))
    print(line("/slack/interactions", clicks))
    print(
        f"interactions     {clicks.requests_per_second / bare.requests_per_second:.3f}x the bare "
        f"route; {clicked:,} task messages for {clicks.requests:,} answered requests"
    )
    print(f"ratio            {ratio:.3f}x the bare route (goal >= {GOAL_RATIO}x)")
    print(f"p99              {ours.p99_ms:.2f} ms (goal <= {GOAL_P99_MS} ms)")
    print(f"queued           {queued:,} task messages for {ours.requests:,} answered requests")
    met = ratio >= GOAL_RATIO and ours.p99_ms <= GOAL_P99_MS and ours.errors == 0
    print("goal             " + ("met" if met else "NOT met"))
    if ours.requests > args.events:
        print(
            f"note             more requests than distinct events ({args.events:,}): raise --events"
        )
    shutil.rmtree(work)
    return 0
