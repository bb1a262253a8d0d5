"""`GET /` and `GET /schedules/{name}`: the status pages, for operators, behind HTTP basic auth.

Server-rendered from the same report as `GET /schedules` (the file, and one Redis pipeline),
readable on a phone; `STATUS_AUTH` unset turns them off (503), since they name channels.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import orjson
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse

from jobs import keys
from jobs.config import Settings
from jobs.digest.ledger import RunRecord
from jobs.errors import ScheduleError, UnknownSchedule
from jobs.scheduling import pause, status
from jobs.scheduling.slots import Schedule

RUNS = 50  # runs shown on a schedule's page, newest first
REALM = {"WWW-Authenticate": 'Basic realm="Slack Digests", charset="UTF-8"'}
PAGES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def check_basic(request: Request, settings: Settings) -> None:
    """Return for `Authorization: Basic` with `STATUS_AUTH`'s user and password (compared in
    constant time); 503 when it is unset, 401 asking for them otherwise."""
    if settings.status_auth is None:
        raise HTTPException(503, "STATUS_AUTH is not set: the status pages are off")
    if not basic_matches(request, settings.status_auth):
        raise HTTPException(401, "wrong or missing user and password", REALM)


def basic_matches(request: Request, expected: tuple[str, str]) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(given.strip(), validate=True).partition(b":")
    except (binascii.Error, ValueError):
        return False
    same_user = hmac.compare_digest(user, expected[0].encode())
    return hmac.compare_digest(password, expected[1].encode()) and same_user


async def report(request: Request) -> tuple[Any, dict[str, Any]]:
    """The schedules file and what `GET /schedules` reports of it; 503 without Redis."""
    loaded = request.app.state.schedules.read()
    try:
        async with request.app.state.redis.pipeline(transaction=False) as pipe:
            status.queue_reads(pipe, loaded)
            replies = await pipe.execute()
    except (RedisError, OSError):
        raise HTTPException(503, "Redis is unreachable") from None
    return loaded, status.report(loaded, replies, datetime.now(UTC))


def page(name: str, **context: Any) -> HTMLResponse:
    return HTMLResponse(PAGES.get_template(name).render(**context))


async def status_page(request: Request) -> HTMLResponse:
    check_basic(request, request.app.state.settings)
    loaded, shown = await report(request)
    rows = [
        row_of(
            loaded.schedules[row["name"]],
            row,
            str(request.url_for("schedule_page", name=row["name"])),
        )
        for row in shown["schedules"]
    ]
    return page("status.html", rows=rows, errors=shown["errors"])


def row_of(schedule: Schedule, row: dict[str, Any], link: str) -> dict[str, Any]:
    """A schedule's line on the status page, in words."""
    run = row["last_run"]
    return {
        "name": schedule.name,
        "title": schedule.title,
        "link": link,
        "words": status.in_words(schedule.cron),
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "enabled": schedule.enabled,
        "next": row["next"][0]["local"] if row["next"] else None,
        "last": status.outcome(row),
        "last_status": run["status"] if run else "",
        "paused": paused_text(row["paused"]),
    }


def paused_text(state: dict[str, Any] | None) -> str:
    return pause.described(state) if state else ""


async def schedule_page(request: Request) -> HTMLResponse:
    check_basic(request, request.app.state.settings)
    loaded, shown = await report(request)
    name = request.path_params["name"]
    try:
        schedule = loaded.get(name)
    except UnknownSchedule:
        raise HTTPException(404, f"no schedule named {name!r}") from None
    except ScheduleError:
        raise HTTPException(503, "the schedules file does not load") from None
    client = request.app.state.redis
    try:
        history = await client.lrange(keys.history(name), 0, RUNS - 1)
        actions = await client.lrange(keys.actions(name), 0, keys.ACTIONS_LENGTH - 1)
    except (RedisError, OSError):
        raise HTTPException(503, "Redis is unreachable") from None
    row = next(r for r in shown["schedules"] if r["name"] == name)
    runs = [RunRecord.from_json(raw) for raw in history]
    return page(
        "schedule.html",
        home=str(request.url_for("status_page")),
        title=schedule.title,
        words=status.in_words(schedule.cron),
        cron=schedule.cron,
        timezone=schedule.timezone,
        enabled=schedule.enabled,
        next=row["next"][0]["local"] if row["next"] else None,
        paused=paused_text(row["paused"]),
        runs=[run_row(run) for run in runs],
        chart=chart(runs),
        actions=[action_row(orjson.loads(raw)) for raw in actions],
    )


def run_row(run: RunRecord) -> dict[str, str]:
    totals = run.totals or {}
    figures = ", ".join(f"{value:,} {name}" for name, value in totals.items() if value)
    return {
        "slot": run.slot,
        "kind": (f"manual, by {run.by}" if run.by else "manual") if run.manual else "scheduled",
        "status": run.status,
        "took": f"{run.finished - run.started:.1f} s",
        "figures": figures or "—",
        "why": run.error or run.reason or "",
    }


def chart(runs: list[RunRecord]) -> list[dict[str, Any]]:
    """Messages per run with figures, oldest first, as bar heights in percent of the most."""
    counted = [
        (run.slot, (run.totals or {}).get("messages", 0)) for run in reversed(runs) if run.totals
    ]
    most = max((n for _, n in counted), default=0) or 1
    return [
        {"height": max(2, round(100 * n / most)), "label": f"{slot}: {n:,} messages"}
        for slot, n in counted
    ]


def action_row(action: dict[str, Any]) -> dict[str, str]:
    details = []
    if action.get("until"):
        details.append(f"until {action['until']}")
    if action.get("reason"):
        details.append(str(action["reason"]))
    return {
        "when": str(action.get("when", "")),
        "action": str(action.get("action", "")),
        "who": str(action.get("who", "")),
        "details": "; ".join(details),
    }
