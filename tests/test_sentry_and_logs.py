"""Secrets and message text never reach Sentry or the logs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import replace

import pytest
import sentry_sdk

from jobs.config import Settings
from jobs.digest.ledger import RunRecord
from jobs.logs import RedactingFormatter
from jobs.redaction import Redactor
from jobs.scheduling.slots import Schedule
from jobs.sentry import check_in, init_sentry, scrubber
from tests.http_sink import HttpSink

SECRETS = {
    "SLACK_SIGNING_SECRET": "signing-secret-value-1234",
    "SLACK_BOT_TOKEN": "xoxb-bot-token-value-5678",
    "TRIGGER_TOKEN": "trigger-token-value-9012",
}


def test_before_send_strips_secrets_headers_and_bodies() -> None:
    settings = Settings.from_env(SECRETS)
    event = {
        "message": f"failed with {SECRETS['SLACK_BOT_TOKEN']}",
        "request": {
            "headers": {
                "Authorization": f"Bearer {SECRETS['TRIGGER_TOKEN']}",
                "X-Slack-Signature": "v0=abc",
                "User-Agent": "Slackbot",
            },
            "data": {"event": {"text": "private message text"}},
        },
        "extra": {"nested": [{"secret": SECRETS["SLACK_SIGNING_SECRET"]}]},
        "breadcrumbs": {"values": [{"message": "user token xoxp-1-2-3 leaked"}]},
    }
    scrubbed = json.dumps(scrubber(settings)(event, {}))
    for value in (*SECRETS.values(), "xoxp-1-2-3", "private message text", "v0=abc"):
        assert value not in scrubbed
    assert "Slackbot" in scrubbed


@pytest.fixture
def sentry_sink() -> Iterator[HttpSink]:
    with HttpSink() as sink:
        yield sink
    sentry_sdk.init()  # back to no reporting


def test_a_real_report_to_sentry_carries_no_secret(sentry_sink: HttpSink) -> None:
    dsn = sentry_sink.url("/1").replace("http://", "http://publickey@")
    settings = Settings.from_env({**SECRETS, "SENTRY_DSN": dsn})
    assert init_sentry(settings)
    sentry_sdk.add_breadcrumb(message=f"signing with {SECRETS['SLACK_SIGNING_SECRET']}")
    try:
        raise RuntimeError(f"Slack said invalid_auth for {SECRETS['SLACK_BOT_TOKEN']}")
    except RuntimeError as error:
        sentry_sdk.capture_exception(error)
    sentry_sdk.flush(timeout=10)
    sent = b"".join(sentry_sink.raw)
    assert b"invalid_auth" in sent  # the report arrived
    for value in SECRETS.values():
        assert value.encode() not in sent


def test_without_a_dsn_nothing_is_reported() -> None:
    assert not init_sentry(Settings.from_env(SECRETS))


@pytest.mark.parametrize("as_json", [False, True])
def test_log_lines_have_secrets_filtered(as_json: bool) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter(Redactor(SECRETS.values()), as_json=as_json))
    logger = logging.getLogger(f"test.redaction.{as_json}")
    logger.addHandler(handler)
    logger.propagate = False
    logger.warning("posting with %s and %s", SECRETS["SLACK_BOT_TOKEN"], "xoxb-unknown-token")
    line = stream.getvalue()
    assert "[Filtered]" in line
    assert SECRETS["SLACK_BOT_TOKEN"] not in line and "xoxb-unknown-token" not in line
    if as_json:
        assert json.loads(line)["level"] == "WARNING"


def test_a_scheduled_run_checks_in_with_sentry_crons(sentry_sink: HttpSink) -> None:
    dsn = sentry_sink.url("/1").replace("http://", "http://publickey@")
    assert init_sentry(Settings.from_env({**SECRETS, "SENTRY_DSN": dsn}))
    weekly = Schedule(name="eng-weekly", cron="0 9 * * MON", channels=("#eng",))
    run = RunRecord("eng-weekly@x", "eng-weekly", "x", False, "failed", 10.0, 12.5)
    check_in(weekly, replace(run, status="delivered", manual=True))
    check_in(weekly, run)
    sentry_sdk.flush(timeout=10)
    lines = b"".join(sentry_sink.raw).decode().splitlines()
    checks = [json.loads(line) for line in lines if '"monitor_slug"' in line]
    assert len(checks) == 1  # the manual run sent none
    check = checks[0]
    assert (check["monitor_slug"], check["status"], check["duration"]) == (
        "eng-weekly",
        "error",
        2.5,
    )
    assert check["monitor_config"]["schedule"] == {"type": "crontab", "value": "0 9 * * MON"}
    assert check["monitor_config"]["checkin_margin"] == 60
