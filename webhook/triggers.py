"""`POST /triggers/{name}`: an external scheduler, or a person with the token, asks for a run.

No body asks for the current slot, `{"slot": …}` for a past one: both are keyed by the run, as
beat's are, so any number of requests for one slot queue one task. An
`Idempotency-Key` asks for a manual run instead, one per key.
"""

from __future__ import annotations

import hmac
import logging
import re
from datetime import datetime

from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from jobs import keys
from jobs.errors import ScheduleError, UnknownSchedule
from jobs.queue import Run, run_job
from jobs.scheduling.file import Loaded
from jobs.scheduling.slots import Schedule
from jobs.scheduling.status import requested_slot
from webhook.events import parse_json
from webhook.verification import Incoming, read

logger = logging.getLogger(__name__)

# Printable ASCII, as in a header; the key becomes part of a Redis key name.
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def authenticate(request: Request, token: str | None) -> None:
    """Return for `Authorization: Bearer $TRIGGER_TOKEN`, compared in constant time."""
    if token is None:
        raise HTTPException(503, "TRIGGER_TOKEN is not set: triggers are off")
    given = bearer(request)
    if given is None:
        raise HTTPException(401, "missing bearer token", {"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(given, token.encode()):
        raise HTTPException(401, "wrong bearer token", {"WWW-Authenticate": "Bearer"})


def bearer(request: Request) -> bytes | None:
    """The request's bearer token, as bytes to compare in constant time; None without one."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        return None
    return given.strip().encode("latin-1")


def triggered(loaded: Loaded, name: str) -> Schedule:
    """The schedule to run: not while the file is broken, since the worker could not load it."""
    try:
        schedule = loaded.get(name)
    except UnknownSchedule:
        raise HTTPException(404, f"no schedule named {name!r}") from None
    except ScheduleError:
        raise HTTPException(
            503, f"the schedules file does not load: {'; '.join(loaded.errors)}"
        ) from None
    if not schedule.enabled:
        raise HTTPException(409, f"schedule {name!r} is disabled")
    return schedule


def asked_slot(incoming: Incoming) -> str | None:
    """The body's `slot`, or None (no body, or `{}`) for the current slot."""
    if not incoming.body:
        return None
    payload = parse_json(incoming)
    unknown = sorted(set(payload) - {"slot"})
    if unknown:
        raise HTTPException(400, f"unknown field {unknown[0]!r}: the body takes only 'slot'")
    slot = payload.get("slot")
    if slot is not None and not isinstance(slot, str):
        raise HTTPException(400, "slot must be an ISO-8601 string")
    return slot


def run_of(incoming: Incoming, schedule: Schedule) -> tuple[Run, str]:
    """The run asked for, and its dedupe key when not its own (one task per slot)."""
    asked = asked_slot(incoming)
    now = datetime.now(schedule.zone)
    key = incoming.header(b"idempotency-key")
    if key is None:
        try:
            slot = requested_slot(schedule, asked, now)
        except ScheduleError as error:
            raise HTTPException(400, str(error)) from None
        return Run(schedule.name, slot), ""
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise HTTPException(400, "Idempotency-Key must be 1 to 255 printable ASCII characters")
    if asked is not None:
        raise HTTPException(400, "an Idempotency-Key asks for a manual run, which takes no slot")
    # A repeat gets the first request's task, so the first request's moment is the run's slot.
    return Run(schedule.name, now, True, "trigger"), keys.idempotency(schedule.name, key)


async def trigger(request: Request) -> JSONResponse:
    state = request.app.state
    authenticate(request, state.settings.trigger_token)
    incoming = await read(request)
    schedule = triggered(state.schedules.read(), request.path_params["name"])
    run, dedupe_key = run_of(incoming, schedule)
    try:
        enqueued = await state.producer.enqueue(run_job(schedule, run, dedupe_key))
    except (RedisError, OSError) as error:
        logger.error("could not enqueue a run of %s: %s", schedule.name, type(error).__name__)
        raise HTTPException(503, "the queue is unavailable; try again") from None
    base = state.settings.public_url or str(request.base_url)
    return JSONResponse(
        {
            "task_id": enqueued.task_id,
            "status_url": f"{base}tasks/{enqueued.task_id}",
            "duplicate": enqueued.duplicate,
        },
        202,
    )
