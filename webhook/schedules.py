"""`GET /schedules`: every schedule's state, from the file and Redis; it names channels, so it
takes the status pages' credentials or the bearer `TRIGGER_TOKEN`."""

from __future__ import annotations

import hmac

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from jobs.config import Settings
from webhook.pages import REALM, basic_matches, report
from webhook.triggers import bearer


def check_reader(request: Request, settings: Settings) -> None:
    """Return for `STATUS_AUTH`'s basic credentials or the bearer `TRIGGER_TOKEN`."""
    if settings.status_auth is None and settings.trigger_token is None:
        raise HTTPException(503, "neither STATUS_AUTH nor TRIGGER_TOKEN is set: /schedules is off")
    if settings.status_auth is not None and basic_matches(request, settings.status_auth):
        return
    token = bearer(request)
    if (
        settings.trigger_token
        and token
        and hmac.compare_digest(token, settings.trigger_token.encode())
    ):
        return
    challenge = {"WWW-Authenticate": "Bearer, " + REALM["WWW-Authenticate"]}
    raise HTTPException(401, "wrong or missing credentials", challenge)


async def schedules_status(request: Request) -> JSONResponse:
    """200 with every schedule and the file's errors (a broken file is shown, not a 500);
    503 when Redis, which holds the last and skipped slots and the outcomes, is unreachable."""
    check_reader(request, request.app.state.settings)
    _, shown = await report(request)
    return JSONResponse(shown)
