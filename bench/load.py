"""The load: wrk when the machine has it, else a bounded asyncio generator, against one URL."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import orjson

WRK_SCRIPT = """
local requests, n, i, route, kind = {}, 0, 0, "/slack/events", "application/json"
init = function(args)
  for line in io.lines(args[1]) do
    local to, as = line:match("^#(%S+)\\t(.*)$")
    if to then
      route, kind = to, as
    else
      local stamp, signature, body = line:match("^(%d+)\\t(%S+)\\t(.*)$")
      n = n + 1
      requests[n] = wrk.format("POST", route, {
        ["Content-Type"] = kind,
        ["X-Slack-Request-Timestamp"] = stamp,
        ["X-Slack-Signature"] = signature,
      }, body)
    end
  end
end
request = function()
  i = i % n + 1
  return requests[i]
end
"""


@dataclass(frozen=True)
class Figures:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


def event_body(n: int, size: int = 1155) -> bytes:
    """A realistic `event_callback` of exactly `size` bytes, unique by its event_id."""
    envelope = {
        "token": "deprecated-verification-token",
        "team_id": "T0AB12CD3",
        "context_team_id": "T0AB12CD3",
        "api_app_id": "A0AB12CD3EF",
        "event": {
            "type": "app_mention",
            "user": "U0AB12CD3EF",
            "text": "",
            "ts": "1795000000.000100",
            "team": "T0AB12CD3",
            "channel": "C0AB12CD3EF",
            "event_ts": "1795000000.000100",
            "client_msg_id": "5e3f1f9a-1c2b-4d5e-8f7a-0b1c2d3e4f5a",
        },
        "type": "event_callback",
        "event_id": f"Ev{n:012d}",
        "event_time": 1795000000,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": "T0AB12CD3",
                "user_id": "U0BOT12CD3",
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-eyJldCI6ImFwcF9tZW50aW9uIiwidGlkIjoiVDBBQjEyQ0QzIn0",
    }
    text = "<@U0BOT12CD3> could you add #eng-platform to the weekly digest? "
    envelope["event"]["text"] = text  # type: ignore[index]
    short = size - len(orjson.dumps(envelope))
    envelope["event"]["text"] = text + "x" * short  # type: ignore[index]
    body = orjson.dumps(envelope)
    assert len(body) == size
    return body


def click_body(n: int) -> bytes:
    """A Home tab button's `block_actions` interaction, form-encoded as Slack sends it; each
    from another person, so none is a double click of another."""
    payload = {
        "type": "block_actions",
        "user": {"id": f"U{n:010d}", "username": "someone", "team_id": "T0AB12CD3"},
        "api_app_id": "A0AB12CD3EF",
        "token": "deprecated-verification-token",
        "container": {"type": "view", "view_id": f"V{n:010d}"},
        "trigger_id": "1795000000.123456.0123456789abcdef0123456789abcdef",
        "team": {"id": "T0AB12CD3", "domain": "acme"},
        "view": {"id": f"V{n:010d}", "type": "home", "team_id": "T0AB12CD3"},
        "actions": [
            {
                "type": "button",
                "action_id": "digest_pause",
                "block_id": "schedule:eng-weekly",
                "text": {"type": "plain_text", "text": "Pause"},
                "value": "eng-weekly",
                "action_ts": "1795000000.000100",
            }
        ],
    }
    return urlencode({"payload": orjson.dumps(payload).decode()}).encode()


# Where each kind of request goes, and as what.
KINDS = {
    "events": ("/slack/events", "application/json", event_body),
    "interactions": ("/slack/interactions", "application/x-www-form-urlencoded", click_body),
}


def write_requests(path: Path, first: int, count: int, secret: str, kind: str = "events") -> None:
    """`count` distinct signed requests of `kind`: a `#route<TAB>content type` line, then one
    `timestamp<TAB>signature<TAB>body` a line."""
    route, content_type, make = KINDS[kind]
    stamp = str(int(time.time()))
    key = secret.encode()
    with path.open("wb") as out:
        out.write(f"#{route}\t{content_type}\n".encode())
        for n in range(first, first + count):
            body = make(n)
            digest = hmac.new(key, f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
            out.write(f"{stamp}\tv0={digest}\t".encode() + body + b"\n")


def run(url: str, requests_file: Path, seconds: int, connections: int) -> Figures:
    if shutil.which("wrk"):
        return run_wrk(url, requests_file, seconds, connections)
    return asyncio.run(run_python(url, requests_file, seconds, connections))


def run_wrk(url: str, requests_file: Path, seconds: int, connections: int) -> Figures:
    script = requests_file.with_suffix(".lua")
    script.write_text(WRK_SCRIPT)
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script)]
    out = subprocess.run(
        [*command, url, "--", str(requests_file)], capture_output=True, text=True, check=True
    ).stdout

    def millis(label: str) -> float:
        found = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert found, out
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]
        return float(found.group(1)) * scale

    total = re.search(r"(\d+) requests in", out)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    assert total and rate, out
    if socket_errors:
        print(f"    wrk socket errors: {socket_errors.group(1)}")
    return Figures(
        requests_per_second=float(rate.group(1)),
        p50_ms=millis("50"),
        p99_ms=millis("99"),
        requests=int(total.group(1)),
        errors=int(errors.group(1)) if errors else 0,
    )


async def run_python(url: str, requests_file: Path, seconds: int, connections: int) -> Figures:
    """A bounded keep-alive load from asyncio, for machines without wrk (slower than wrk)."""
    host, port = re.match(r"http://([^:/]+):(\d+)", url).groups()  # type: ignore[union-attr]
    prepared = []
    header, *lines = requests_file.read_bytes().splitlines()
    route, content_type = header[1:].decode().split("\t")
    for line in lines:
        stamp, signature, body = line.split(b"\t", 2)
        head = (
            f"POST {route} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
            f"X-Slack-Request-Timestamp: {stamp.decode()}\r\nX-Slack-Signature: "
            f"{signature.decode()}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        prepared.append(head.encode() + body)
    latencies: list[float] = []
    errors = 0
    next_request = 0
    deadline = time.monotonic() + seconds

    async def client() -> None:
        nonlocal errors, next_request
        reader, writer = await asyncio.open_connection(host, int(port))
        while time.monotonic() < deadline:
            request = prepared[next_request % len(prepared)]
            next_request += 1
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"content-length: (\d+)", head, re.I)
            if length:
                await reader.readexactly(int(length.group(1)))
            latencies.append(time.perf_counter() - started)
            errors += not head.startswith(b"HTTP/1.1 2")
        writer.close()

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(connections)))
    elapsed = time.monotonic() - started
    latencies.sort()
    return Figures(
        requests_per_second=len(latencies) / elapsed,
        p50_ms=latencies[len(latencies) // 2] * 1000,
        p99_ms=latencies[int(len(latencies) * 0.99)] * 1000,
        requests=len(latencies),
        errors=errors,
    )
