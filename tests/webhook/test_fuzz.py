"""Garbage at every route: whatever comes in, no answer is a 500.

Seeded, so a failure repeats: `FUZZ_SEED` picks the inputs, `FUZZ_PER_ROUTE` how many
requests each route gets (300 in the suite; `bench/RESULTS.md` has a run of 10,000).
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import redis
from starlette.routing import Route
from starlette.testclient import TestClient

from jobs.config import Settings
from tests.conftest import environment
from tests.signed import command_form, event_callback, signature_headers
from webhook.app import create_app

PER_ROUTE = int(os.environ.get("FUZZ_PER_ROUTE", "300"))
SEED = int(os.environ.get("FUZZ_SEED", "20261202"))
TOKEN = "fuzz-trigger-token-0123456789"
# A database of its own: what the fuzzing queues is flushed, and no worker consumes it.
DB = 12
SCHEDULES = """\
version: 1
schedules:
  - {name: fuzzed, cron: "*/5 * * * *", channels: ["#eng"], deliver: {slack: ["#eng"]}}
  - {name: idle, cron: "0 9 * * *", channels: ["#eng"], deliver: {slack: ["#eng"]}, enabled: false}
"""

TEXTS = [
    "",
    " ",
    "fuzzed",
    "idle",
    "nope",
    "..",
    "%2e%2e",
    "%ff%fe",
    "%00",
    "a/b",
    "\u00e9t\u00e9",
    "\u202e\u0000",
    "\U0001f600",
    "<!channel>",
    "<https://evil|bank>",
    "-1",
    "9" * 5000,
    "0" * 5000,
    "1e400",
    "NaN",
    "null",
    "true",
    "[]",
    "{}",
    "x" * 70_000,
    "2026-12-02T09:00:00+00:00",
    "9999-12-31T23:59:59+14:00",
    "0001-01-01T00:00:00+00:00",
    "2026-02-30T00:00:00Z",
    "\t\r\n",
]
CONTENT_TYPES = [
    b"application/json",
    b"application/json; charset=utf-8",
    b"application/x-www-form-urlencoded",
    b"application/x-www-form-urlencoded; charset=latin-1",
    b"multipart/form-data; boundary=x",
    b"text/plain",
    b"",
    b"\xff\xfe",
    b"application/json" * 500,
]
# The client refuses URLs past 64 KiB, as servers do long before: long, not too long.
URL_TEXT = 6000
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "FUZZ"]


def dumps(value: Any) -> bytes:
    """JSON as any client may write it: integers past 64 bits, non-ASCII text unescaped."""
    return json.dumps(value, ensure_ascii=False).encode()


@dataclass(frozen=True)
class Ask:
    """One request: everything the client sends."""

    method: str
    path: str
    headers: list[tuple[bytes, bytes]]
    body: bytes


class Garbage:
    """Malformed, edge-case and sometimes well-formed inputs, from one seeded generator."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def text(self) -> str:
        rng = self.rng
        if rng.random() < 0.6:
            return rng.choice(TEXTS)
        alphabet = "aZ09-_./%&=?#+ <>!@\"'\\\u00e9\u4e2d\U0001f600\x00\x7f"
        return "".join(rng.choice(alphabet) for _ in range(rng.choice([1, 5, 40, 300])))

    def value(self, depth: int = 0) -> Any:
        """A JSON value: scalars of every type, odd numbers, nested shapes."""
        rng = self.rng
        kind = rng.randrange(9 if depth < 3 else 5)
        if kind == 0:
            return self.text()
        if kind == 1:
            return rng.choice([0, -1, 2**63, 2**64 + 1, 1.5, -0.0, 10**300])
        if kind == 2:
            return rng.choice([None, True, False])
        if kind == 3:
            return rng.choice(
                ["event_callback", "url_verification", "ssl_check", "app_rate_limited"]
            )
        if kind == 4:
            return ""
        if kind in (5, 6):
            return {self.text()[:20]: self.value(depth + 1) for _ in range(rng.randrange(4))}
        return [self.value(depth + 1) for _ in range(rng.randrange(4))]

    def json_body(self) -> bytes:
        rng = self.rng
        choice = rng.randrange(6)
        if choice == 0:
            event_id = f"Ev{rng.getrandbits(48):012X}"
            payload: Any = event_callback(self.text()[:30], event_id=event_id)
            if rng.random() < 0.7:
                key = rng.choice(list(payload))
                payload[key] = self.value()
            if rng.random() < 0.5:
                payload["event"] = self.value()
            return dumps(payload)
        if choice == 1:
            return dumps({"type": "url_verification", "challenge": self.value()})
        if choice == 2:
            return dumps({"slot": self.value()} if rng.random() < 0.7 else self.value())
        if choice == 3:
            depth = rng.choice([10, 1000, 100_000])
            return b"[" * depth + b"]" * depth
        if choice == 4:
            return rng.choice([b"{", b'{"a":1e99999}', b"\xff\xfe{}", b'{"a":"\\ud800"}', b"[1,]"])
        return dumps(self.value())

    def form_body(self) -> bytes:
        rng = self.rng
        fields: dict[str, str] = command_form(self.text())
        for _ in range(rng.randrange(3)):
            key = rng.choice([*fields, self.text()[:10]])
            if rng.random() < 0.3:
                fields.pop(key, None)
            else:
                fields[key] = self.text()
        if rng.random() < 0.1:
            fields = {"ssl_check": rng.choice(["1", "0", self.text()])}
        if rng.random() < 0.2:
            return rng.choice([b"a=%ff", b"&&==&", b"=", b"a", b"%", b"a=1&a=2", b"\xff=\xfe"])
        return urlencode(fields).encode(errors="surrogatepass")

    def body(self) -> bytes:
        rng = self.rng
        choice = rng.randrange(5)
        if choice == 0:
            return b""
        if choice == 1:
            return self.json_body()
        if choice == 2:
            return self.form_body()
        if choice == 3:
            return rng.randbytes(rng.choice([1, 100, 70_000]))
        return self.text().encode("utf-8", "surrogatepass")

    def header_value(self) -> bytes:
        text = self.text()
        return text.encode("utf-8", "surrogatepass").replace(b"\r", b"").replace(b"\n", b"")

    def headers(self, body: bytes, signs: bool, fits: bytes) -> list[tuple[bytes, bytes]]:
        """Headers for `body`: its fitting content type `fits` more often than not, a valid
        Slack signature often where `signs`, and garbage in every header now and then."""
        rng = self.rng
        headers: dict[bytes, bytes] = {}
        if rng.random() < 0.9:
            headers[b"content-type"] = fits if rng.random() < 0.6 else rng.choice(CONTENT_TYPES)
        if signs and rng.random() < 0.6:
            stamp = None if rng.random() < 0.9 else rng.choice([0, 2**40])
            signed = signature_headers(body, timestamp=stamp)
            headers.update({k.lower().encode(): v.encode() for k, v in signed.items()})
        for name in (b"x-slack-request-timestamp", b"x-slack-signature", b"x-slack-retry-num"):
            if rng.random() < 0.15:
                headers[name] = self.header_value()
        auth = rng.random()
        if auth < 0.5:
            headers[b"authorization"] = b"Bearer " + TOKEN.encode()
        elif auth < 0.7:
            scheme = rng.choice([b"Bearer ", b"Basic ", b"bearer", b""])
            headers[b"authorization"] = scheme + self.header_value()
        if rng.random() < 0.2:
            headers[b"idempotency-key"] = self.header_value()
        if rng.random() < 0.1:
            headers[b"content-length"] = rng.choice([b"-1", b"abc", b"9" * 5000, b"0", b" 5"])
        return list(headers.items())

    def path(self, template: str) -> str:
        rng = self.rng

        def fill(part: str) -> str:
            if not part.startswith("{"):
                return part
            if rng.random() < 0.5:
                return rng.choice(["fuzzed", "idle"])
            chosen = self.text()[:URL_TEXT]
            # Mostly quoted whole; else with '%', '/' and the like left as typed (`%ff`, `a/b`).
            safe = "" if rng.random() < 0.7 else "/%.:@!$&'()*+,;="
            return quote(chosen, safe=safe)

        path = "/".join(fill(part) for part in template.split("/"))
        if rng.random() < 0.4:
            query = [(self.text()[:30], self.text()[:URL_TEXT]) for _ in range(rng.randrange(4))]
            if template == "/unsubscribe":
                query += [(k, self.text()[:URL_TEXT]) for k in ("schedule", "recipient", "token")]
            path += "?" + urlencode(query, errors="surrogatepass")
        elif rng.random() < 0.1:
            path += "?" + rng.choice(["%ff", "a=%", "&&&", "a=1;b=2", "\u00e9=\u00e9"])
        return path

    def ask(self, route: Route) -> Ask:
        rng = self.rng
        methods = sorted(route.methods or {"GET"})
        method = rng.choice(methods) if rng.random() < 0.85 else rng.choice(METHODS)
        body = self.body() if method not in ("GET", "HEAD") or rng.random() < 0.2 else b""
        fits = b"application/json"
        if rng.random() < 0.6 and method == "POST":  # what the route reads, garbled within
            if route.path == "/slack/commands":
                body, fits = self.form_body(), b"application/x-www-form-urlencoded"
            elif route.path in ("/slack/events", "/triggers/{name}"):
                body = self.json_body() if rng.random() < 0.8 else b""
        signs = route.path.startswith("/slack/")
        return Ask(method, self.path(route.path), self.headers(body, signs, fits), body)


@pytest.fixture
def fuzzed_app(redis_url: str, tmp_path: Path) -> Iterator[TestClient]:
    schedules = tmp_path / "schedules.yaml"
    schedules.write_text(SCHEDULES)
    url = redis_url.rsplit("/", 1)[0] + f"/{DB}"
    env = {
        **environment(url),
        "TRIGGER_TOKEN": TOKEN,
        "SCHEDULES_FILE": str(schedules),
        "PUBLIC_URL": "https://digests.example.com/",
    }
    app = create_app(Settings.from_env(env))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
    flushed = redis.Redis.from_url(url)
    flushed.flushdb()
    flushed.close()


def send(client: TestClient, ask: Ask) -> int:
    answer = client.request(ask.method, ask.path, headers=ask.headers, content=ask.body)
    return answer.status_code


def fuzz(client: TestClient, count: int, seed: int) -> tuple[Counter[str], list[Ask]]:
    """`count` requests at each route of the app; the statuses seen, and what got a 500."""
    garbage = Garbage(seed)
    routes = [route for route in client.app.routes if isinstance(route, Route)]  # type: ignore[attr-defined]
    statuses: Counter[str] = Counter()
    failed: list[Ask] = []
    for route in routes:
        for _ in range(count):
            ask = garbage.ask(route)
            status = send(client, ask)
            statuses[f"{route.path} {status}"] += 1
            if status == 500:
                failed.append(ask)
    return statuses, failed


def shown(ask: Ask) -> str:
    return f"{ask.method} {ask.path[:120]!r} {ask.headers!r:.300} body={ask.body[:120]!r}"


def test_no_input_at_any_route_gets_a_500(
    fuzzed_app: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    started = time.monotonic()
    statuses, failed = fuzz(fuzzed_app, PER_ROUTE, SEED)
    elapsed = time.monotonic() - started
    sent = sum(statuses.values())
    print(f"fuzz: {sent:,} requests in {elapsed:.1f}s, {len(failed)} answered 500")
    print("\n".join(f"  {key}: {n}" for key, n in sorted(statuses.items())))
    assert [shown(ask) for ask in failed[:5]] == []
    assert [r.getMessage() for r in caplog.records if r.exc_info][:3] == []
    # The inputs reached past the door: some of every route's answers were not refusals.
    assert any(key.startswith("/slack/events 200") for key in statuses)
    assert any(key.startswith("/triggers/{name} 202") for key in statuses)


def test_the_generator_repeats_for_a_seed() -> None:
    route = Route("/triggers/{name}", endpoint=lambda request: None, methods=["POST"])

    def asks() -> list[Ask]:
        garbage = Garbage(7)
        return [garbage.ask(route) for _ in range(20)]

    # The same requests, but for what comes from the clock (the signature's timestamp).
    def shape(asks: list[Ask]) -> list[tuple[str, str, list[bytes]]]:
        return [(ask.method, ask.path, [name for name, _ in ask.headers]) for ask in asks]

    assert shape(asks()) == shape(asks())
