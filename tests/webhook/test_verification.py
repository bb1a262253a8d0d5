"""Slack request verification and request-shape errors on both Slack routes."""

from __future__ import annotations

import hashlib
import hmac
import random
import socket
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode

import orjson
import pytest
from freezegun import freeze_time
from starlette.exceptions import HTTPException
from starlette.testclient import TestClient

from jobs.config import Settings
from tests.conftest import LiveServer
from tests.signed import SECRET, event_callback, signature_headers, signed_json
from webhook.app import create_app
from webhook.verification import FORM, Incoming, form_fields

# Slack's documented example of a signed request.
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_TIMESTAMP = 1531420618
SLACK_BODY = (
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
    "G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-"
    "collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F3977008"
    "85554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c44"
    "7fce8b6703c"
)
SLACK_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


@pytest.fixture
def offline() -> Iterator[TestClient]:
    """The app with Redis on a dead port: nothing here may need it."""
    settings = Settings.from_env(
        {"REDIS_URL": "redis://127.0.0.1:1/0", "SLACK_SIGNING_SECRET": SECRET}
    )
    with TestClient(create_app(settings)) as client:
        yield client


def challenge() -> dict[str, str]:
    return {"type": "url_verification", "challenge": "3eZbrw1aBm2rZgRNFdxV", "token": "x"}


def test_slack_documented_example_verifies() -> None:
    settings = Settings.from_env({"SLACK_SIGNING_SECRET": SLACK_SECRET})
    headers = {
        "X-Slack-Request-Timestamp": str(SLACK_TIMESTAMP),
        "X-Slack-Signature": SLACK_SIGNATURE,
        "Content-Type": "application/x-www-form-urlencoded",
    }
    with freeze_time("2018-07-12 18:36:58"), TestClient(create_app(settings)) as client:
        answer = client.post("/slack/commands", content=SLACK_BODY, headers=headers)
        assert answer.status_code == 200
        tampered = client.post("/slack/commands", content=SLACK_BODY + "------", headers=headers)
        assert tampered.status_code == 401


def test_signed_url_verification_answers_the_challenge(offline: TestClient) -> None:
    body, headers = signed_json(challenge())
    answer = offline.post("/slack/events", content=body, headers=headers)
    assert answer.status_code == 200
    assert answer.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV"}


def test_unsigned_url_verification_is_refused(offline: TestClient) -> None:
    answer = offline.post("/slack/events", json=challenge())
    assert answer.status_code == 401
    assert answer.json() == {"error": "missing Slack signature headers"}


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"X-Slack-Signature": "sha256=abc"}, "malformed Slack signature headers"),
        ({"X-Slack-Request-Timestamp": "soon"}, "malformed Slack signature headers"),
        ({"X-Slack-Signature": "v0=" + "0" * 64}, "invalid Slack signature"),
        ({"X-Slack-Signature": "v0=\u00e9t\u00e9".encode()}, "invalid Slack signature"),
    ],
)
def test_bad_signatures_are_refused(
    offline: TestClient, change: dict[str, str | bytes], error: str
) -> None:
    body, signed = signed_json(challenge())
    headers = {name.encode(): value.encode() for name, value in signed.items()}
    headers.update({name.encode(): as_bytes(value) for name, value in change.items()})
    answer = offline.post("/slack/events", content=body, headers=headers)
    assert answer.status_code == 401
    assert answer.json() == {"error": error}


def test_body_that_is_not_utf8_gets_401_not_500(offline: TestClient) -> None:
    body = b"\xff\xfe\x00 binary"
    headers = {"Content-Type": "application/json", **signature_headers(body, secret="wrong")}
    assert offline.post("/slack/events", content=body, headers=headers).status_code == 401


def as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def test_wrong_secret_is_refused(offline: TestClient) -> None:
    body, headers = signed_json(challenge(), secret="another-secret")
    assert offline.post("/slack/events", content=body, headers=headers).status_code == 401


def test_stale_timestamp_is_refused_even_when_signed(offline: TestClient) -> None:
    body = orjson.dumps(challenge())
    headers = {"Content-Type": "application/json", **signature_headers(body, timestamp=1000)}
    answer = offline.post("/slack/events", content=body, headers=headers)
    assert answer.status_code == 401
    assert answer.json() == {"error": "stale Slack request timestamp"}


def test_body_signed_then_changed_is_refused(offline: TestClient) -> None:
    body, headers = signed_json(challenge())
    answer = offline.post("/slack/events", content=body.replace(b"3eZ", b"4eZ"), headers=headers)
    assert answer.status_code == 401


@pytest.mark.parametrize("route", ["/slack/events", "/slack/commands"])
def test_ssl_check_gets_an_empty_200(offline: TestClient, route: str) -> None:
    answer = offline.post(
        route,
        content=b"ssl_check=1&token=abc",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200
    assert answer.content == b""


def test_oversized_body_is_refused_from_its_length(offline: TestClient) -> None:
    body, headers = signed_json({"type": "event_callback", "pad": "x" * 70_000})
    answer = offline.post("/slack/events", content=body, headers=headers)
    assert answer.status_code == 413


def test_oversized_streamed_body_is_refused_without_reading_it_all() -> None:
    settings = Settings.from_env(
        {"REDIS_URL": "redis://127.0.0.1:1/0", "SLACK_SIGNING_SECRET": SECRET}
    )
    chunk = b"x" * 16384
    with (
        LiveServer(create_app(settings)) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock,
    ):
        sock.sendall(
            b"POST /slack/events HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        # Five chunks pass the 64 KiB limit; a server that wanted the whole body would wait.
        for _ in range(5):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        status_line = sock.recv(4096).split(b"\r\n", 1)[0]
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large"


def test_wrong_content_type_is_400(offline: TestClient) -> None:
    body = orjson.dumps(challenge())
    headers = {"Content-Type": "text/plain", **signature_headers(body)}
    answer = offline.post("/slack/events", content=body, headers=headers)
    assert answer.status_code == 400
    assert "application/json" in answer.json()["error"]


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b""])
def test_malformed_json_is_400(offline: TestClient, body: bytes) -> None:
    headers = {"Content-Type": "application/json", **signature_headers(body)}
    assert offline.post("/slack/events", content=body, headers=headers).status_code == 400


def test_event_callback_without_event_id_is_400(offline: TestClient) -> None:
    payload = event_callback()
    del payload["event_id"]
    body, headers = signed_json(payload)
    assert offline.post("/slack/events", content=body, headers=headers).status_code == 400


def test_payload_types_we_do_not_handle_get_200(offline: TestClient) -> None:
    body, headers = signed_json({"type": "something_new", "token": "x"})
    assert offline.post("/slack/events", content=body, headers=headers).status_code == 200


def test_app_rate_limited_is_answered_200(offline: TestClient) -> None:
    payload = {"type": "app_rate_limited", "team_id": "T1", "minute_rate_limited": 1518467820}
    body, headers = signed_json(payload)
    assert offline.post("/slack/events", content=body, headers=headers).status_code == 200


def test_without_a_signing_secret_slack_routes_say_so() -> None:
    settings = Settings.from_env({"REDIS_URL": "redis://127.0.0.1:1/0"})
    with TestClient(create_app(settings)) as client:
        body, headers = signed_json(challenge())
        answer = client.post("/slack/events", content=body, headers=headers)
    assert answer.status_code == 503
    assert answer.json() == {"error": "SLACK_SIGNING_SECRET is not set"}


def test_signature_helper_matches_slack_example() -> None:
    digest = hmac.new(
        SLACK_SECRET.encode(), f"v0:{SLACK_TIMESTAMP}:{SLACK_BODY}".encode(), hashlib.sha256
    )
    assert "v0=" + digest.hexdigest() == SLACK_SIGNATURE
    assert (
        signature_headers(SLACK_BODY.encode(), SLACK_SECRET, SLACK_TIMESTAMP)["X-Slack-Signature"]
        == SLACK_SIGNATURE
    )


MALFORMED_TIMESTAMPS = [
    "9" * 4301,  # past int()'s digit limit
    "1" * 20,
    "-1",
    "+1700000000",
    " 1700000000",
    "1700000000 ",
    "1_700_000_000",
    "1.7e9",
    "\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660",  # Arabic-Indic digits
    "\uff11\uff17\uff10\uff10",  # full-width digits
]


@pytest.mark.parametrize("route", ["/slack/events", "/slack/commands"])
@pytest.mark.parametrize("timestamp", MALFORMED_TIMESTAMPS)
def test_malformed_timestamps_are_401_without_a_traceback(
    offline: TestClient, caplog: pytest.LogCaptureFixture, route: str, timestamp: str
) -> None:
    body = b"{}"
    headers = {
        b"content-type": b"application/json",
        b"x-slack-request-timestamp": timestamp.encode(),
        b"x-slack-signature": signature_headers(body)["X-Slack-Signature"].encode(),
    }
    answer = offline.post(route, content=body, headers=headers)
    assert answer.status_code == 401
    assert answer.json() == {"error": "malformed Slack signature headers"}
    assert [r for r in caplog.records if r.exc_info] == []


@pytest.mark.parametrize("route", ["/slack/events", "/slack/commands", "/unsubscribe"])
def test_a_content_length_of_thousands_of_digits_is_413(offline: TestClient, route: str) -> None:
    answer = offline.post(route, headers={"Content-Length": "9" * 5000}, content=b"")
    assert answer.status_code == 413
    # Leading zeros count towards int()'s digit limit too; the length they spell is zero.
    answer = offline.post(route, headers={"Content-Length": "0" * 5000}, content=b"")
    assert answer.status_code != 500


# Pieces of form bodies: escapes good and broken, `+`, raw UTF-8, backslashes.
FORM_PIECES = ["a", "b", "=", "&", "+", "%", "%4", "%41", "%e9", "%C3", "%A9", "%C3%A9", "é", "€"]
FORM_PIECES += ["\\", "\\x41", "\\n", "%zz", "%5C", "%25", "%%41", " ", "%2B", "%26", "%3D"]


@pytest.mark.parametrize("seed", range(4))
def test_a_form_reads_as_parse_qs_reads_it(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(3000):
        body = "".join(rng.choice(FORM_PIECES) for _ in range(rng.randint(0, 14))).encode()
        try:
            parsed = parse_qs(body.decode(), keep_blank_values=True, strict_parsing=bool(body))
            expected: dict[str, str] | None = {name: values[0] for name, values in parsed.items()}
        except ValueError:
            expected = None  # 400
        try:
            found: dict[str, str] | None = form_fields(Incoming({b"content-type": FORM}, body))
        except HTTPException as error:
            assert error.status_code == 400
            found = None
        assert found == expected, body


def test_a_click_payload_reads_whole() -> None:
    payload = {"type": "block_actions", "text": '50% done & \\ "quoted" + é €', "n": [1, 2]}
    body = urlencode({"payload": orjson.dumps(payload).decode(), "other": "x"}).encode()
    fields = form_fields(Incoming({b"content-type": FORM}, body))
    assert orjson.loads(fields["payload"]) == payload
    assert fields["other"] == "x"
