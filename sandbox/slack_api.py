"""A Slack Web API simulator: the methods a digest uses, answered from a `Workspace` in Slack's own
shapes over real HTTP, with switches for what real Slack does to clients (429s, 5xx, slow answers)
and a record of every post. `slack_sdk.WebClient(base_url=simulator.url)` talks to it unchanged.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import threading
import time
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.server import HOST, BackgroundServer
from sandbox.service import Service
from sandbox.workspace import Message, Workspace, generate, summarize_thread, ts_micros, ts_string

Args = dict[str, Any]
HISTORY_LIMIT = (100, 999)  # (default, maximum) page sizes, as Slack documents them
REPLIES_LIMIT = (1000, 1000)
LIST_LIMIT = (100, 1000)
USERS_LIMIT = (0, 1000)  # no limit: every user
MAX_BLOCKS = 50
MAX_TEXT = 40_000


class SlackError(Exception):
    """An `ok: false` answer; `error` is Slack's code for what went wrong."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def encode_cursor(position: str) -> str:
    return base64.urlsafe_b64encode(position.encode()).decode()


def decode_cursor(cursor: str, prefix: str) -> int:
    """The position a cursor of ours names; anything else is Slack's `invalid_cursor`."""
    try:
        kind, _, position = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if kind != prefix:
            raise ValueError(kind)
        return int(position)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise SlackError("invalid_cursor") from None


def limit_arg(args: Args, bounds: tuple[int, int]) -> int:
    """`limit` clamped to Slack's maximum; 0 or absent means the default."""
    default, most = bounds
    try:
        limit = int(args.get("limit") or 0)
    except (TypeError, ValueError):
        raise SlackError("invalid_limit") from None
    return min(limit, most) if limit > 0 else default


def flag_arg(args: Args, name: str) -> bool:
    return str(args.get(name, "")).lower() in ("1", "true")


def ts_arg(args: Args, name: str, error: str) -> int | None:
    value = args.get(name)
    if value in (None, ""):
        return None
    try:
        return ts_micros(str(value))
    except ValueError:
        raise SlackError(error) from None


def json_arg(args: Args, name: str, error: str) -> Any:
    """An argument that form-encoded clients send as a JSON string and JSON clients as a value."""
    value = args.get(name)
    if not isinstance(value, str):
        return value
    try:
        return orjson.loads(value) if value else None
    except orjson.JSONDecodeError:
        raise SlackError(error) from None


def page_of(
    items: list[Any], args: Args, bounds: tuple[int, int], kind: str
) -> tuple[list[Any], str]:
    """One page of a list and the cursor of the next ("" at the end)."""
    cursor = args.get("cursor")
    start = decode_cursor(cursor, kind) if cursor else 0
    end = start + (limit_arg(args, bounds) or len(items))
    return items[start:end], encode_cursor(f"{kind}:{end}") if end < len(items) else ""


class History:
    """A channel's history sorted by ts, each message serialized once: a page is a bisect and a
    join of bytes, so paging through 100,000 messages costs the pages, not the channel."""

    def __init__(self, messages: list[Message]) -> None:
        keyed = sorted((ts_micros(message["ts"]), index) for index, message in enumerate(messages))
        self.keys = [key for key, _ in keyed]
        self.plain: list[bytes] = []
        self.full: list[bytes] = []  # with metadata, which Slack returns only when asked
        for _, index in keyed:
            plain, full = self.serialize(messages[index])
            self.plain.append(plain)
            self.full.append(full)

    @staticmethod
    def serialize(message: Message) -> tuple[bytes, bytes]:
        full = orjson.dumps(message)
        if "metadata" not in message:
            return full, full
        return orjson.dumps({k: v for k, v in message.items() if k != "metadata"}), full

    def add(self, message: Message) -> None:
        key = ts_micros(message["ts"])
        index = bisect_left(self.keys, key)
        plain, full = self.serialize(message)
        self.keys.insert(index, key)
        self.plain.insert(index, plain)
        self.full.insert(index, full)

    def index(self, key: int) -> int | None:
        index = bisect_left(self.keys, key)
        return index if index < len(self.keys) and self.keys[index] == key else None

    def get(self, key: int) -> Message | None:
        index = self.index(key)
        return None if index is None else orjson.loads(self.full[index])

    def replace(self, message: Message) -> None:
        index = self.index(ts_micros(message["ts"]))
        assert index is not None, "only a message in the history can be replaced"
        self.plain[index], self.full[index] = self.serialize(message)

    def page(self, args: Args) -> bytes:
        """`conversations.history`'s answer: newest first, from the cursor down to `oldest`."""
        oldest = ts_arg(args, "oldest", "invalid_ts_oldest")
        latest = ts_arg(args, "latest", "invalid_ts_latest")
        inclusive = flag_arg(args, "inclusive")
        low = (
            0 if oldest is None else (bisect_left if inclusive else bisect_right)(self.keys, oldest)
        )
        high = len(self.keys)
        if latest is not None:
            high = (bisect_right if inclusive else bisect_left)(self.keys, latest)
        if args.get("cursor"):
            high = min(high, bisect_right(self.keys, decode_cursor(args["cursor"], "next_ts")))
        start = max(low, high - limit_arg(args, HISTORY_LIMIT))
        chosen = (self.full if flag_arg(args, "include_all_metadata") else self.plain)[start:high]
        chosen.reverse()
        more = start > low
        return orjson.dumps(
            {
                "ok": True,
                "messages": orjson.Fragment(b"[" + b",".join(chosen) + b"]"),
                "has_more": more,
                "pin_count": 0,
                "response_metadata": {
                    "next_cursor": encode_cursor(f"next_ts:{self.keys[start - 1]}") if more else ""
                },
            }
        )


class Slack:
    """The Web API methods over one workspace's state; each takes the call's arguments and
    answers a dict or pre-serialized bytes, or raises `SlackError`."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.channels = {channel["id"]: channel for channel in workspace.channels}
        self.users = {user["id"]: user for user in workspace.users}
        self.histories = {cid: History(messages) for cid, messages in workspace.messages.items()}
        self.threads = {key: list(replies) for key, replies in workspace.replies.items()}
        # (channel, reply ts) → its thread_ts, to find replies by ts for permalinks
        self.in_thread = {
            (cid, reply["ts"]): thread_ts
            for (cid, thread_ts), replies in workspace.replies.items()
            for reply in replies
        }
        self.posted: list[dict[str, Any]] = []
        self.last_post = 0
        self.methods: dict[str, Callable[[Args], dict[str, Any] | bytes]] = {
            "auth.test": self.auth_test,
            "conversations.list": self.conversations_list,
            "conversations.info": self.conversations_info,
            "conversations.history": self.conversations_history,
            "conversations.replies": self.conversations_replies,
            "users.info": self.users_info,
            "users.list": self.users_list,
            "chat.postMessage": self.chat_post_message,
            "chat.getPermalink": self.chat_get_permalink,
        }

    def channel(self, args: Args, by_name: bool = False) -> dict[str, Any]:
        """The channel a call names; private channels the bot is not in do not exist for it."""
        ref = str(args.get("channel") or "")
        found = self.channels.get(ref)
        if found is None and by_name:
            name = ref.removeprefix("#")
            found = next((c for c in self.channels.values() if c["name"] == name), None)
        if found is None or (found["is_private"] and not found["is_member"]):
            raise SlackError("channel_not_found")
        return found

    def member_channel(self, args: Args, by_name: bool = False) -> dict[str, Any]:
        channel = self.channel(args, by_name)
        if not channel["is_member"]:
            raise SlackError("not_in_channel")
        return channel

    def auth_test(self, args: Args) -> dict[str, Any]:
        ws = self.workspace
        return {
            "ok": True,
            "url": f"https://{ws.domain}.slack.com/",
            "team": ws.team_name,
            "user": self.users[ws.bot_user_id]["name"],
            "team_id": ws.team_id,
            "user_id": ws.bot_user_id,
            "bot_id": ws.bot_id,
            "is_enterprise_install": False,
        }

    def conversations_list(self, args: Args) -> dict[str, Any]:
        types = set(str(args.get("types") or "public_channel").split(","))
        archived = not flag_arg(args, "exclude_archived")
        visible = [
            channel
            for channel in self.channels.values()
            if ("private_channel" if channel["is_private"] else "public_channel") in types
            and (channel["is_member"] or not channel["is_private"])
            and (archived or not channel["is_archived"])
        ]
        channels, cursor = page_of(visible, args, LIST_LIMIT, "channel")
        return {"ok": True, "channels": channels, "response_metadata": {"next_cursor": cursor}}

    def conversations_info(self, args: Args) -> dict[str, Any]:
        return {"ok": True, "channel": self.channel(args)}

    def conversations_history(self, args: Args) -> bytes:
        return self.histories[self.member_channel(args)["id"]].page(args)

    def conversations_replies(self, args: Args) -> dict[str, Any]:
        """The parent first on every page, as Slack does, then its replies oldest first."""
        channel = self.member_channel(args)["id"]
        key = ts_arg(args, "ts", "thread_not_found")
        parent = None if key is None else self.histories[channel].get(key)
        if parent is None:
            raise SlackError("thread_not_found")
        replies, cursor = page_of(
            self.threads.get((channel, parent["ts"]), []), args, REPLIES_LIMIT, "reply"
        )
        messages = [parent, *replies]
        if not flag_arg(args, "include_all_metadata"):
            messages = [{k: v for k, v in m.items() if k != "metadata"} for m in messages]
        return {
            "ok": True,
            "messages": messages,
            "has_more": bool(cursor),
            "response_metadata": {"next_cursor": cursor},
        }

    def users_info(self, args: Args) -> dict[str, Any]:
        user = self.users.get(str(args.get("user") or ""))
        if user is None:
            raise SlackError("user_not_found")
        return {"ok": True, "user": user}

    def users_list(self, args: Args) -> dict[str, Any]:
        members, cursor = page_of(list(self.users.values()), args, USERS_LIMIT, "user")
        return {
            "ok": True,
            "members": members,
            "cache_ts": int(time.time()),
            "response_metadata": {"next_cursor": cursor},
        }

    def chat_post_message(self, args: Args) -> dict[str, Any]:
        channel = self.member_channel(args, by_name=True)["id"]
        message = self.bot_message(args)
        thread = ts_arg(args, "thread_ts", "thread_not_found")
        if thread is not None:
            self.reply(channel, thread, message, flag_arg(args, "reply_broadcast"))
        else:
            self.histories[channel].add(message)
        parsed: Args = {key: message[key] for key in ("blocks", "metadata") if key in message}
        self.posted.append({**args, **parsed, "channel_id": channel, "ts": message["ts"]})
        return {"ok": True, "channel": channel, "ts": message["ts"], "message": message}

    def bot_message(self, args: Args) -> Message:
        blocks = json_arg(args, "blocks", "invalid_blocks_format")
        metadata = json_arg(args, "metadata", "invalid_metadata_format")
        text = str(args.get("text") or "")[:MAX_TEXT]
        if not text and not blocks and not args.get("attachments"):
            raise SlackError("no_text")
        if blocks is not None and not isinstance(blocks, list):
            raise SlackError("invalid_blocks_format")
        if blocks and len(blocks) > MAX_BLOCKS:
            raise SlackError("invalid_blocks")
        if metadata is not None and not (
            isinstance(metadata, dict)
            and isinstance(metadata.get("event_type"), str)
            and isinstance(metadata.get("event_payload"), dict)
        ):
            raise SlackError("invalid_metadata_format")
        ws = self.workspace
        message: Message = {
            "type": "message",
            "user": ws.bot_user_id,
            "bot_id": ws.bot_id,
            "text": text,
            "ts": self.next_ts(),
            "team": ws.team_id,
            "bot_profile": {"id": ws.bot_id, "name": "Slack Digests", "team_id": ws.team_id},
        }
        if blocks:
            message["blocks"] = blocks
        if metadata:
            message["metadata"] = metadata
        return message

    def next_ts(self) -> str:
        """Now, made unique: two posts in one microsecond still get distinct timestamps."""
        self.last_post = max(time.time_ns() // 1000, self.last_post + 1)
        return ts_string(self.last_post)

    def reply(self, channel: str, thread: int, message: Message, broadcast: bool) -> None:
        """Post into a thread: kept for `conversations.replies`, and in history when broadcast."""
        history = self.histories[channel]
        parent = history.get(thread)
        if parent is not None and parent.get("thread_ts", parent["ts"]) != parent["ts"]:
            parent = history.get(ts_micros(parent["thread_ts"]))  # a broadcast: reply to its root
        if parent is None:
            raise SlackError("thread_not_found")
        message.update(
            thread_ts=parent["ts"], parent_user_id=parent.get("user", parent.get("bot_id"))
        )
        replies = self.threads.setdefault((channel, parent["ts"]), [])
        replies.append(message)
        self.in_thread[(channel, message["ts"])] = parent["ts"]
        summarize_thread(parent, replies)
        history.replace(parent)
        if broadcast:
            message["subtype"] = "thread_broadcast"
            history.add(message)

    def chat_get_permalink(self, args: Args) -> dict[str, Any]:
        channel = self.channel(args)["id"]
        ts = str(args.get("message_ts") or "")
        thread_ts = self.in_thread.get((channel, ts))
        key = ts_arg(args, "message_ts", "message_not_found")
        if thread_ts is None and (key is None or self.histories[channel].index(key) is None):
            raise SlackError("message_not_found")
        link = (
            f"https://{self.workspace.domain}.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        )
        if thread_ts:
            link += f"?thread_ts={thread_ts}&cid={channel}"
        return {"ok": True, "channel": channel, "permalink": link}


@dataclass
class Fault:
    """What some calls of a method get instead of an answer: a delay, then maybe an HTTP error
    (429 with Retry-After, or a 5xx). It hits every `every`th call, `times` more times (None: until
    cleared)."""

    status: int | None
    delay: float = 0.0
    every: int = 1
    times: int | None = None
    retry_after: int = 1
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
        self.lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route("/api/{method}", self.api, methods=["GET", "POST"]),
                Route("/sandbox/posted", self.show_posted),
                Route("/sandbox/calls", self.show_calls),
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

    def channel_id(self, name: str) -> str:
        """The ID of a channel by name (`eng` or `#eng`), for tests and scripts."""
        wanted = name.removeprefix("#")
        for channel in self.workspace.channels:
            if channel["name"] == wanted:
                return str(channel["id"])
        raise KeyError(f"the sandbox workspace has no channel named {wanted!r}")

    def rate_limit(
        self, method: str, *, every: int = 1, times: int | None = None, retry_after: int = 1
    ) -> None:
        """Answer 429 `ratelimited` with `Retry-After` to every `every`th call of `method` ("*":
        any), `times` times or until cleared."""
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

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

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
            return refused(refusal)
        try:
            answer = self.answer(method, await arguments(request), request)
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

    async def clear_over_http(self, request: Request) -> Response:
        self.clear_faults()
        return json_response({"ok": True})

    async def control(self, request: Request) -> Response:
        """`POST /sandbox/rate_limit|fail|slow` with the Python method's arguments as JSON."""
        switches: dict[str, Callable[..., None]] = {
            "rate_limit": self.rate_limit,
            "fail": self.fail,
            "slow": self.slow,
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
        return json_response(body, 429, {"Retry-After": str(fault.retry_after)})
    return json_response({"ok": False, "error": "internal_error"}, fault.status or 500)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def main(argv: list[str] | None = None) -> None:
    """`python -m sandbox.slack_api`: a demo workspace with a week of history up to now."""
    parser = argparse.ArgumentParser(description="Serve a simulated Slack Web API.")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--days", type=float, default=7, help="days of history up to now")
    parser.add_argument("--token", help="the bot token to accept (default: the workspace's)")
    options = parser.parse_args(argv)
    end = datetime.now(UTC)
    workspace = generate(options.seed, start=end - timedelta(days=options.days), end=end)
    if options.token:
        workspace.bot_token = options.token
    simulator = SlackSimulator(workspace)
    print(f"SLACK_API_URL=http://{options.host}:{options.port}/api/", flush=True)
    print(f"SLACK_BOT_TOKEN={workspace.bot_token}", flush=True)
    uvicorn.run(simulator.app, host=options.host, port=options.port, log_level="warning")


if __name__ == "__main__":
    main()
