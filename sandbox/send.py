"""`python -m sandbox.send '/digest now #eng 7d'` or `… '@Slack Digests now #eng'`: what Slack
sends when someone types that, signed with the dev stack's secret and sent to its web process;
then what the app answered, from the sandbox.

It reads the dev stack's environment (`set -a; . .dev/env; set +a`): `SLACK_SIGNING_SECRET`,
`PUBLIC_URL` (the web), `SLACK_API_URL` and `SLACK_BOT_TOKEN` (the sandbox, for channel and user
IDs, the `response_url` and the posts).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import httpx2
import orjson
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier

from jobs.slack.slash import is_immediate
from sandbox.slack.responses import response_url

# How the app may be named in a mention, as typed.
APP_NAMES = ("slack digests", "digests")


class SendError(Exception):
    """What is missing to send, or what went wrong sending; the message says which."""


def required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SendError(f"{name} is not set: run `set -a; . .dev/env; set +a` first")
    return value


class Sender:
    """Slack's side of one dev stack: builds, signs and sends requests, and reads the answers."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.secret = required(env, "SLACK_SIGNING_SECRET")
        self.web = required(env, "PUBLIC_URL").rstrip("/")
        api = required(env, "SLACK_API_URL")
        self.sandbox = api.rstrip("/").removesuffix("/api")
        self.slack = WebClient(token=required(env, "SLACK_BOT_TOKEN"), base_url=api)

    def channel_id(self, name: str) -> str:
        channels = self.slack.conversations_list(types="public_channel,private_channel")
        for channel in channels["channels"]:
            if channel["name"] == name.removeprefix("#"):
                return str(channel["id"])
        raise SendError(f"the sandbox has no channel named {name!r}")

    def person(self) -> dict[str, Any]:
        """The one who types: the workspace's first person (not a bot)."""
        members: list[dict[str, Any]] = self.slack.users_list()["members"]
        return next(m for m in members if not m.get("is_bot") and m["id"] != "USLACKBOT")

    def post(self, route: str, body: bytes, content_type: str) -> httpx2.Response:
        stamp = str(int(time.time()))
        signature = SignatureVerifier(self.secret).generate_signature(timestamp=stamp, body=body)
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": str(signature),
        }
        answer = httpx2.post(f"{self.web}{route}", content=body, headers=headers, timeout=10)
        if answer.status_code != 200:
            raise SendError(f"{route} answered {answer.status_code}: {answer.text}")
        return answer

    def command(self, line: str, channel: str) -> tuple[str, Callable[[], str | None]]:
        """Send a slash command; its immediate answer, and how to find the follow-up."""
        command, _, text = line.partition(" ")
        request = uuid.uuid4().hex
        who = self.person()
        form = {
            "team_id": "T0SANDBOX",
            "channel_id": self.channel_id(channel),
            "channel_name": channel.removeprefix("#"),
            "user_id": who["id"],
            "user_name": who["name"],
            "command": command,
            "text": text,
            "response_url": response_url(self.sandbox, request),
            "trigger_id": request,
        }
        body = urlencode(form).encode()
        answer = self.post("/slack/commands", body, "application/x-www-form-urlencoded")
        shown = str(answer.json().get("text", ""))

        def follow_up() -> str | None:
            found = httpx2.get(f"{self.sandbox}/sandbox/responses", timeout=5).json()
            return next((str(r.get("text")) for r in found if r["id"] == request), None)

        return shown, follow_up

    def mention(self, words: str, channel: str) -> tuple[str, Callable[[], str | None]]:
        """Send an `app_mention` event; how to find what the app posted in its thread."""
        bot = self.slack.auth_test()["user_id"]
        where = self.channel_id(channel)
        ts = f"{time.time():.6f}"
        envelope = {
            "team_id": "T0SANDBOX",
            "api_app_id": "A0SANDBOX",
            "type": "event_callback",
            "event_id": f"Ev{uuid.uuid4().hex[:12].upper()}",
            "event_time": int(time.time()),
            "event": {
                "type": "app_mention",
                "user": self.person()["id"],
                "text": f"<@{bot}> {words}",
                "ts": ts,
                "event_ts": ts,
                "channel": where,
            },
        }
        self.post("/slack/events", orjson.dumps(envelope), "application/json")

        def answered() -> str | None:
            posted = httpx2.get(f"{self.sandbox}/sandbox/posted", timeout=5).json()
            replies = [
                p
                for p in posted
                if p.get("channel_id") == where and float(p.get("ts", 0)) > float(ts)
            ]
            return str(replies[0].get("text")) if replies else None

        return f"sent the mention to #{channel.removeprefix('#')}", answered


def mentioned(line: str) -> str | None:
    """The words after the app's name in `@Slack Digests now #eng`, or None if not a mention."""
    if not line.startswith("@"):
        return None
    rest = line[1:]
    for name in APP_NAMES:
        if rest.lower().startswith(name):
            return rest[len(name) :].strip()
    return rest.partition(" ")[2].strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.send",
        description="Send a signed slash command or app mention to the dev stack's web process.",
    )
    parser.add_argument("line", help="'/digest now #eng 7d' or '@Slack Digests now #eng'")
    parser.add_argument("--channel", default="general", help="where it is typed (default general)")
    parser.add_argument("--wait", type=float, default=60, help="seconds to wait for the answer")
    args = parser.parse_args(argv)
    try:
        sender = Sender(os.environ)
        words = mentioned(args.line)
        if words is not None:
            shown, answer = sender.mention(words, args.channel)
        elif args.line.startswith("/"):
            shown, answer = sender.command(args.line, args.channel)
        else:
            raise SendError("say '/digest …' (a slash command) or '@Slack Digests …' (a mention)")
        print(shown, flush=True)
        if words is None and is_immediate(args.line.partition(" ")[2]):
            return 0
        deadline = time.monotonic() + args.wait
        while (text := answer()) is None:
            if time.monotonic() > deadline:
                raise SendError(f"no answer within {args.wait:g}s: is the worker running?")
            time.sleep(0.2)
        print(text)
    except (SendError, httpx2.HTTPError, SlackApiError) as error:
        print(f"sandbox.send: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
