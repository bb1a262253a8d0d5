"""`/unsubscribe`: the link in every digest mail, and the RFC 8058 one-click POST behind it.

GET only shows a page with a button, because mail scanners and previewers follow links; the POST
(the button, or the mail client's one-click) unsubscribes. Pages are HTML: people read them.
"""

from __future__ import annotations

import html

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import HTMLResponse

from jobs import keys
from jobs.digest import unsubscribe
from webhook.verification import read

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{title}</title></head>
<body style="font-family: sans-serif; max-width: 32em; margin: 3em auto; padding: 0 1em">
<h1 style="font-size: 1.3em">{title}</h1>
<p>{text}</p>{form}
</body></html>
"""
BUTTON = """
<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Unsubscribe</button></form>"""
INCOMPLETE = "This unsubscribe link is incomplete: open the whole link from the mail."
INVALID = "This unsubscribe link is not valid: use the link in a recent digest mail."
UNAVAILABLE = "The service cannot reach its database right now. Please try again in a minute."


def page(title: str, text: str, status: int = 200, form: str = "") -> HTMLResponse:
    return HTMLResponse(PAGE.format(title=title, text=text, form=form), status)


async def signed(request: Request) -> tuple[str, str] | HTMLResponse:
    """The link's (schedule, recipient) when its token is right, else the page saying why."""
    query = request.query_params
    schedule, recipient, given = (query.get(k, "") for k in ("schedule", "recipient", "token"))
    if not (schedule and recipient and given):
        return page("Incomplete link", INCOMPLETE, 400)
    key = await request.app.state.redis.get(keys.UNSUBSCRIBE_KEY)
    if not unsubscribe.is_valid(key, schedule, recipient, given):
        return page("Invalid link", INVALID, 403)
    return schedule, recipient


async def unsubscribe_link(request: Request) -> HTMLResponse:
    """GET: the button, or that it was pressed already. POST: unsubscribe (again: no change)."""
    posted = request.method == "POST"
    if posted:
        await read(request)  # bounded (413 over 64 KiB); what it says does not matter
    try:
        link = await signed(request)
        if isinstance(link, HTMLResponse):
            return link
        schedule, recipient = link
        key, member = keys.unsubscribed(schedule), unsubscribe.address(recipient)
        if posted:
            await request.app.state.redis.sadd(key, member)
        elif not await request.app.state.redis.sismember(key, member):
            asked = f"Stop mailing the {html.escape(schedule)} digest to {html.escape(recipient)}?"
            return page("Unsubscribe", asked, form=BUTTON)
    except (RedisError, OSError):
        return page("Try again later", UNAVAILABLE, 503)
    said = f"{html.escape(recipient)} will no longer receive the {html.escape(schedule)} digest."
    return page("Unsubscribed", said)
