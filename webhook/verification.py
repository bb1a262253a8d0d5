"""Slack request verification: the raw body, read within a size limit, signed with v0 HMAC,
and the endpoint every Slack route is: read, verify, answer.
"""

from __future__ import annotations

import codecs
import hashlib
import hmac
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote_to_bytes

from starlette.datastructures import State
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

# Slack's payloads are a few KiB; anything near this is not from Slack.
MAX_BODY = 64 * 1024
# Slack's replay window: a request signed more than five minutes ago is refused.
MAX_AGE = 300
FORM = b"application/x-www-form-urlencoded"
# Unix seconds in ASCII digits; more than 12 is no time Slack could send, and past 4,300 `int()`
# raises, so the length is checked before anything reads the number.
TIMESTAMP = re.compile(rb"[0-9]{1,12}")


@dataclass(frozen=True)
class Incoming:
    """A request's headers (ASGI's lower-case byte names, looked up once) and raw body."""

    headers: dict[bytes, bytes]
    body: bytes

    def content_type(self) -> bytes:
        return self.headers.get(b"content-type", b"")

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return None if value is None else value.decode("latin-1")


async def read(request: Request, limit: int = MAX_BODY) -> Incoming:
    """Headers and body, refused with 413 as soon as the body is known to exceed `limit`."""
    headers = dict(request.scope["headers"])
    length = headers.get(b"content-length")
    if length is not None:
        if not length.isdigit():
            raise HTTPException(400, "Content-Length is not a number")
        # Past 4,300 digits `int()` raises; far fewer already exceed any limit.
        digits = length.lstrip(b"0") or b"0"
        if len(digits) > len(str(limit)) or int(digits) > limit:
            raise HTTPException(413, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    # `stream()` rather than `receive()`: a middleware (Sentry's) may have read the body first.
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return Incoming(headers, b"".join(chunks))


def form_fields(incoming: Incoming) -> dict[str, str]:
    """A form-encoded body's fields (the first value of each), as `parse_qs` reads them
    (`keep_blank_values`, `strict_parsing`); 400 for another body."""
    if not incoming.content_type().startswith(FORM):
        raise HTTPException(400, f"expected Content-Type: {FORM.decode()}")
    body = incoming.body
    fields: dict[str, str] = {}
    if not body:
        return fields
    try:
        body.decode()
    except UnicodeDecodeError:
        raise HTTPException(400, "malformed form body") from None
    for field in body.split(b"&"):
        name, equals, value = field.partition(b"=")
        if not equals:
            raise HTTPException(400, "malformed form body")
        fields.setdefault(unquoted(name), unquoted(value))
    return fields


def unquoted(raw: bytes) -> str:
    """A form name or value: `+` a space, `%XX` a byte, the bytes UTF-8 (invalid ones replaced).

    `unquote` loops in Python over every escape, a third of a click's time in this process
    (its JSON is mostly escapes); written as `\\x` escapes, C decodes them. A raw backslash
    would be read as an escape too, and a `%` without two hex digits stays as it is: both take
    `unquote`'s way.
    """
    plain = raw.replace(b"+", b" ")
    if b"%" not in plain:
        return plain.decode("utf-8", "replace")
    if b"\\" not in plain:
        try:
            return codecs.escape_decode(plain.replace(b"%", b"\\x"))[0].decode("utf-8", "replace")
        except ValueError:
            pass
    return unquote_to_bytes(plain).decode("utf-8", "replace")


def is_ssl_check(incoming: Incoming) -> bool:
    """Slack's certificate probe, which it sends unsigned and form-encoded."""
    if not incoming.content_type().startswith(FORM) or b"ssl_check=" not in incoming.body:
        return False
    return parse_qs(incoming.body.decode("latin-1")).get("ssl_check") == ["1"]


# Slack's routes answer most requests with an empty 200; a response holds no per-request state.
EMPTY = Response()
# What a Slack route does with a request once Slack has signed it (the app's state, the request).
Answer = Callable[[State, Incoming], Awaitable[Response]]


class SlackEndpoint:
    """The ASGI endpoint of a Slack route: read the body (413 when too large), answer Slack's
    unsigned `ssl_check` probe with an empty 200, refuse a bad signature with 401, then
    `answer` the request.

    An ASGI endpoint rather than a `Request` function: Starlette wraps each call of a function
    in three closures and its own exception handling, and these routes answer with a shared
    empty response; that was a tenth of `/slack/events`' cost under `scripts/bench webhook`.
    An error raised here is answered by the app's exception handlers all the same.
    """

    def __init__(self, answer: Answer) -> None:
        self.answer = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: State = scope["app"].state
        incoming = await read(Request(scope, receive))
        if is_ssl_check(incoming):
            response = EMPTY
        else:
            state.verifier.verify(incoming)
            response = await self.answer(state, incoming)
        await response(scope, receive, send)


class Verifier:
    """Checks `X-Slack-Signature` over `v0:{timestamp}:{raw body}` with the signing secret.

    slack_sdk's `SignatureVerifier` decodes the body as UTF-8 first and raises on other bytes;
    this hashes the raw bytes, as Slack signs them, so any body gets a clean 401 or a pass.
    """

    def __init__(self, signing_secret: str | None) -> None:
        self.key = signing_secret.encode() if signing_secret else None

    def verify(self, incoming: Incoming) -> None:
        """Return if Slack signed this body; raise 401 saying why not otherwise."""
        if self.key is None:
            raise HTTPException(503, "SLACK_SIGNING_SECRET is not set")
        timestamp = incoming.headers.get(b"x-slack-request-timestamp")
        signature = incoming.headers.get(b"x-slack-signature")
        if not timestamp or not signature:
            raise HTTPException(401, "missing Slack signature headers")
        if not TIMESTAMP.fullmatch(timestamp) or not signature.startswith(b"v0="):
            raise HTTPException(401, "malformed Slack signature headers")
        if abs(time.time() - int(timestamp)) > MAX_AGE:
            raise HTTPException(401, "stale Slack request timestamp")
        base = b"v0:" + timestamp + b":" + incoming.body
        expected = b"v0=" + hmac.new(self.key, base, hashlib.sha256).hexdigest().encode()
        if not hmac.compare_digest(expected, signature):
            raise HTTPException(401, "invalid Slack signature")
