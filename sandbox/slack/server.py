"""The Web API methods served over real HTTP, with switches for what real Slack does to clients
(429s, 5xx, slow answers), set from Python or over HTTP by other processes."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.server import BackgroundServer
from sandbox.service import Service
from sandbox.slack.arguments import Args, SlackError
from sandbox.slack.limits import PAGED_2025, Limits
from sandbox.slack.methods import Slack
from sandbox.slack.responses import Responses
from sandbox.workspace import Workspace, generate

# What identifies a page of a paged read: two calls with the same asked for the same page.
PAGE_ARGUMENTS = ("channel", "ts", "oldest", "latest", "cursor", "limit", "inclusive")


@dataclass(frozen=True)
class Call:
    """One call as the simulator answered it: when (monotonic), its HTTP status, the
    `Retry-After` it was told, and for history and replies the page it asked for."""

    at: float
    method: str
    status: int
    retry_after: float = 0.0
    page: tuple[str, ...] | None = None


def page_of_call(method: str, args: Args) -> tuple[str, ...] | None:
    if method not in PAGED_2025:
        return None
    return (method, *(str(args.get(name, "")) for name in PAGE_ARGUMENTS))


@dataclass
class Fault:
    """What some calls of a method get instead of an answer: a delay, then maybe an HTTP error
    (429 with Retry-After, or a 5xx). It hits every `every`th call, `times` more times (None: until
    cleared)."""

    status: int | None
    delay: float = 0.0
    every: int = 1
    times: int | None = None
    retry_after: int | str | None = 1  # the header as sent; None sends none
    after: bool = False  # delay the answer after the call took effect, not before
    seen: int = 0

    def __post_init__(self) -> None:
        if self.every < 1 or (self.times is not None and self.times < 0) or self.delay < 0:
            raise ValueError(f"a fault needs every >= 1, times >= 0 and delay >= 0: {self}")

    def hits(self) -> bool:
        if self.times == 0:
            return False
        self.seen += 1
        if self.seen % self.every:
            return False
        if self.times is not None:
            self.times -= 1
        return True


class SlackSimulator(Service):
    """The simulator served on a loopback port while the `with` block lasts.

    `url` is what `SLACK_API_URL` should be; `posted` records every `chat.postMessage` (its
    arguments with the `channel_id` and `ts` it got); `calls` counts requests per method. The
    fault switches are also under `/sandbox/` over HTTP, for other processes.
    """

    def __init__(self, workspace: Workspace | None = None, *, port: int | None = None) -> None:
        self.workspace = workspace or generate()
        self.slack = Slack(self.workspace)
        self.calls: Counter[str] = Counter()
        self.faults: dict[str, list[Fault]] = {}
        self.limits: Limits | None = None  # Slack's rate limits, when they are on
        self.traffic: list[Call] = []  # every call, in order, with how it was answered
        self.lock = threading.Lock()
        self.responses = Responses()
        self.app = Starlette(
            routes=[
                Route("/api/{method}", self.api, methods=["GET", "POST"]),
                Route("/sandbox/respond/{id}", self.responses.respond, methods=["POST"]),
                Route("/sandbox/responses", self.responses.show),
                Route("/sandbox/posted", self.show_posted),
                Route("/sandbox/calls", self.show_calls),
                Route("/sandbox/traffic", self.show_traffic),
                Route("/sandbox/faults", self.clear_over_http, methods=["DELETE"]),
                Route("/sandbox/{control}", self.control, methods=["POST"]),
            ]
        )
        self.server = BackgroundServer(self.app, port)

    @property
    def url(self) -> str:
        return f"{self.server.url}/api/"

    @property
    def token(self) -> str:
        return self.workspace.bot_token

    @property
    def posted(self) -> list[dict[str, Any]]:
        return self.slack.posted

    @property
    def direct(self) -> list[dict[str, Any]]:
        """Direct messages the bot sent people (`chat.postMessage` to a user ID)."""
        return self.slack.direct

    def home_of(self, user: str) -> dict[str, Any] | None:
        """The Home tab last published for `user`."""
        views = self.slack.views.get(user)
        return views[-1] if views else None

    def channel_id(self, name: str) -> str:
        """The ID of a channel by name (`eng` or `#eng`), for tests and scripts."""
        wanted = name.removeprefix("#")
        for channel in self.workspace.channels:
            if channel["name"] == wanted:
                return str(channel["id"])
        raise KeyError(f"the sandbox workspace has no channel named {wanted!r}")

    def rate_limit(
        self,
        method: str,
        *,
        every: int = 1,
        times: int | None = None,
        retry_after: int | str | None = 1,
    ) -> None:
        """Answer 429 `ratelimited` with `Retry-After` to every `every`th call of `method` ("*":
        any), `times` times or until cleared; `retry_after` None leaves the header out, and a
        text sends it as it is (Slack's header is seconds, but a client must survive others)."""
        self.add(method, Fault(429, every=every, times=times, retry_after=retry_after))

    def fail(
        self, method: str, *, status: int = 500, times: int | None = 1, every: int = 1
    ) -> None:
        """Answer HTTP `status` (a 5xx) to the next `times` calls of `method` ("*": any; None:
        until cleared)."""
        if not 500 <= status <= 599:
            raise ValueError(f"fail() injects server errors (5xx), not {status}")
        self.add(method, Fault(status, every=every, times=times))

    def slow(
        self, method: str, seconds: float, *, times: int | None = None, after: bool = False
    ) -> None:
        """Delay the answers to `method` by `seconds`, `times` times or until cleared; `after`
        delays only the answer, once the call took effect (a post that lands, then a client
        that dies waiting for its `ts`)."""
        self.add(method, Fault(None, delay=seconds, times=times, after=after))

    def limit(
        self,
        minute: float = 60.0,
        *,
        tiers: bool = True,
        like_2025: bool = False,
        page: int | None = None,
    ) -> None:
        """Enforce Slack's rate limits (`sandbox.slack.limits`): each method's tier per token
        over a sliding minute of `minute` seconds, and or the 2025 limits; a refused call gets
        429 with the seconds until the window has room as `Retry-After`. `page` caps the
        messages of a history or replies page."""
        with self.lock:
            self.limits = Limits(minute, tiers, like_2025, page)

    def limit_like_2025(self, minute: float = 60.0, tiers: bool = False) -> None:
        """Slack's 2025 limits for apps outside the Marketplace: `conversations.history` and
        `.replies` answer one call a minute per token and at most 15 messages a page (with
        `tiers`, every other method keeps its tier); 0 turns the limits off."""
        if minute < 0:
            raise ValueError(f"a minute lasts 0 seconds or more, not {minute}")
        if minute == 0:
            with self.lock:
                self.limits = None
            return
        self.limit(minute, tiers=tiers, like_2025=True)

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()
            self.limits = None

    def add(self, method: str, fault: Fault) -> None:
        with self.lock:
            self.faults.setdefault(method, []).append(fault)

    def faults_for(self, method: str) -> tuple[float, float, Fault | None]:
        """The delays before and after the work, and the refusal (if any) this call gets; each
        matching fault counts it."""
        with self.lock:
            hit = [f for f in [*self.faults.get(method, []), *self.faults.get("*", [])] if f.hits()]
        refusal = next((fault for fault in hit if fault.status), None)
        before = sum(fault.delay for fault in hit if not fault.after)
        return before, sum(fault.delay for fault in hit if fault.after), refusal

    async def api(self, request: Request) -> Response:
        method = request.path_params["method"]
        self.calls[method] += 1
        delay, delay_after, refusal = self.faults_for(method)
        if delay:
            await asyncio.sleep(delay)
        if refusal is not None:
            self.traffic.append(Call(time.monotonic(), method, refusal.status or 500))
            return refused(refusal)
        try:
            args = await arguments(request)
        except SlackError as error:
            return json_response({"ok": False, "error": error.error})
        limits = self.limits
        if limits is not None:
            token = request.headers.get("authorization", "") or str(args.get("token", ""))
            wait = limits.admit(method, token, str(args.get("channel", "")))
            if wait:
                self.traffic.append(Call(time.monotonic(), method, 429, wait))
                limited = {"ok": False, "error": "ratelimited"}
                return json_response(limited, 429, {"Retry-After": limits.retry_after(wait)})
            asked = str(args.get("limit") or "")
            size = limits.page_size(method, int(asked) if asked.isdigit() else None)
            if size is not None:
                args["limit"] = size
        self.traffic.append(Call(time.monotonic(), method, 200, page=page_of_call(method, args)))
        try:
            answer = self.answer(method, args, request)
        except SlackError as error:
            answer = {"ok": False, "error": error.error}
        if delay_after:
            await asyncio.sleep(delay_after)
        body = answer if isinstance(answer, bytes) else orjson.dumps(answer)
        return Response(body, media_type="application/json; charset=utf-8")

    def answer(self, method: str, args: Args, request: Request) -> dict[str, Any] | bytes:
        handler = self.slack.methods.get(method)
        if handler is None:
            return {"ok": False, "error": "unknown_method", "req_method": method}
        sent = str(args.pop("token", ""))  # Slack also takes the token as an argument
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip() or sent
        if not token:
            raise SlackError("not_authed")
        if token != self.workspace.bot_token:
            raise SlackError("invalid_auth")
        return handler(args)

    async def show_posted(self, request: Request) -> Response:
        return json_response(self.posted)

    async def show_calls(self, request: Request) -> Response:
        return json_response(dict(self.calls))

    def summary(self) -> dict[str, dict[str, int]]:
        """Per method: calls answered, calls refused with 429, and distinct pages served (for
        history and replies), over `traffic`."""
        found: dict[str, dict[str, int]] = {}
        pages: dict[str, set[tuple[str, ...]]] = {}
        for call in list(self.traffic):
            counts = found.setdefault(call.method, {"calls": 0, "429": 0})
            counts["calls"] += 1
            counts["429"] += call.status == 429
            if call.page is not None:
                pages.setdefault(call.method, set()).add(call.page)
        for method, served in pages.items():
            found[method]["distinct pages"] = len(served)
        return found

    async def show_traffic(self, request: Request) -> Response:
        return json_response(self.summary())

    async def clear_over_http(self, request: Request) -> Response:
        self.clear_faults()
        return json_response({"ok": True})

    async def control(self, request: Request) -> Response:
        """`POST /sandbox/rate_limit|fail|slow` with the Python method's arguments as JSON."""
        switches: dict[str, Callable[..., None]] = {
            "rate_limit": self.rate_limit,
            "fail": self.fail,
            "slow": self.slow,
            "limit_like_2025": self.limit_like_2025,
            "limit": self.limit,
        }
        switch = switches.get(request.path_params["control"])
        if switch is None:
            return json_response({"ok": False, "error": "unknown control"}, 404)
        try:
            switch(**orjson.loads(await request.body()))
        except (TypeError, ValueError, orjson.JSONDecodeError) as error:
            return json_response({"ok": False, "error": str(error)}, 400)
        return json_response({"ok": True})

    def start(self) -> SlackSimulator:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()


async def arguments(request: Request) -> Args:
    """The call's arguments from the query string and a form or JSON body, as Slack accepts them."""
    args: Args = dict(request.query_params)
    body = await request.body()
    if not body:
        return args
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise SlackError("invalid_json") from None
        if not isinstance(parsed, dict):
            raise SlackError("invalid_json")
        args.update(parsed)
    else:
        args.update(parse_qsl(body.decode(errors="replace"), keep_blank_values=True))
    return args


def refused(fault: Fault) -> Response:
    if fault.status == 429:
        body = {"ok": False, "error": "ratelimited"}
        wait = fault.retry_after
        return json_response(body, 429, None if wait is None else {"Retry-After": str(wait)})
    return json_response({"ok": False, "error": "internal_error"}, fault.status or 500)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")
