"""Following a run from the command line: is a worker there, what is the run doing, how did it end.

A person reads this, so it shows stages and counts as they change, and the end as a summary;
`--json` keeps the run's record for scripts.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

# Loaded with this module, before a run is queued, so a Ctrl-C once it is queued meets the loop.
from celery.result import AsyncResult

from jobs.celery import app
from jobs.config import Settings, mask_url
from jobs.digest.ledger import RunRecord

# How long a worker has to answer a ping; a busy worker still answers at once.
PING_TIMEOUT = 2.0
POLL = 0.5
# Each stage of the pipeline's progress, and how many messages it has seen, in words.
STAGES = {
    "collect": "collecting: {:,} messages so far",
    "summarize": "summarizing {:,} messages",
    "deliver": "delivering the digest of {:,} messages",
}


def no_worker(settings: Settings) -> str | None:
    """Why nothing would run a queued task, or None when a worker answers."""
    if app.control.ping(timeout=PING_TIMEOUT, limit=1):
        return None
    return (
        f"no worker answers on {mask_url(settings.redis.url)}: start one with "
        "`celery -A jobs worker` (or run scripts/dev), then run this again; "
        "`--no-wait` only queues the run, for a worker to take when it starts"
    )


def activity(state: str, info: Any) -> str:
    """What the task is doing, in words, from its Celery state and progress."""
    if state == "PENDING":
        return "queued, waiting for a worker to take it"
    if state == "PROGRESS" and isinstance(info, dict):
        stage = STAGES.get(str(info.get("stage")), str(info.get("stage")) + ": {:,} messages")
        return stage.format(int(info.get("messages") or 0))
    if state == "RETRY":  # a 429 or an outage; `info` is the error it waits out
        return f"waiting to try again ({info})" if info else "waiting to try again"
    return "started" if state == "STARTED" else state.lower()


def summary(record: dict[str, Any]) -> list[str]:
    """How the run ended: status, figures, each destination's outcome, and the error."""
    seconds = record.get("finished", 0) - record.get("started", 0)
    lines = [f"{record.get('status')} {record.get('run')} in {seconds:.1f}s"]
    totals = record.get("totals") or {}
    if totals:
        lines.append("  " + ", ".join(f"{value:,} {name}" for name, value in totals.items()))
    for destination, outcome in (record.get("destinations") or {}).items():
        lines.append(f"  {destination}: {outcome}")
    if record.get("reason"):
        lines.append(f"  why: {record['reason']}")
    if record.get("error"):
        lines.append(f"  error: {record['error']}")
    return lines


def follow(task_id: str, *, as_json: bool, out: TextIO = sys.stdout) -> int:
    """Show the run's progress until it ends; 0 when it delivered (or had nothing to send)."""
    said = sys.stderr if as_json else out
    result = AsyncResult(task_id, app=app)
    began = time.monotonic()
    shown = ""
    while not result.ready():
        line = activity(result.state, result.info)
        if line != shown:
            print(f"{time.monotonic() - began:6.1f}s  {line}", file=said, flush=True)
            shown = line
        time.sleep(POLL)
    if result.failed():
        print(f"failed: {type(result.result).__name__}: {result.result}", file=sys.stderr)
        return 1
    record: dict[str, Any] = result.result
    if record.get("status") == "duplicate":
        print(f"task {record['owner']} runs {record['run']}; following it", file=said)
        return follow(record["owner"], as_json=as_json, out=out)
    print(json.dumps(record, indent=2) if as_json else "\n".join(summary(record)), file=out)
    return 0 if RunRecord.from_dict(record).succeeded else 1
