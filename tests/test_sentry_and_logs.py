"""Secrets and message text never reach Sentry or the logs."""

from __future__ import annotations

import io
import json
import logging
import logging.handlers
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import sentry_sdk

from jobs import logs
from jobs.config import Settings
from jobs.digest.ledger import RunRecord
from jobs.logs import RedactingFormatter, configure_logging
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


@pytest.fixture
def root_logging() -> Iterator[None]:
    """The root logger as `configure_logging` leaves it, put back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_line_without_a_record_reads_as_one_with(
    log_format: str, root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(Settings.from_env({**SECRETS, "LOG_FORMAT": log_format}))
    logger = logging.getLogger("webhook.access")
    message = f"POST /slack/events 200 1.2ms {SECRETS['SLACK_BOT_TOKEN']} xoxb-unknown-token"
    made: list[logging.LogRecord] = []
    factory = logging.getLogRecordFactory()

    def counted(*args: Any, **kwargs: Any) -> logging.LogRecord:
        made.append(factory(*args, **kwargs))
        return made[-1]

    logging.setLogRecordFactory(counted)
    try:
        logs.info(logger, message)
        assert made == []  # the cheap path
        logger.info("%s", message)
        assert len(made) == 1
    finally:
        logging.setLogRecordFactory(factory)
    direct, recorded = capsys.readouterr().err.splitlines()
    if log_format == "json":
        direct, recorded = json.loads(direct), json.loads(recorded)
        assert direct.pop("time")[:19] == recorded.pop("time")[:19]
        assert direct == recorded
        assert direct["message"] == "POST /slack/events 200 1.2ms [Filtered] [Filtered]"
    else:
        assert (
            direct[23:]
            == recorded[23:]
            == (" INFO webhook.access POST /slack/events 200 1.2ms [Filtered] [Filtered]")
        )
        assert direct[:19] == recorded[:19]


def test_a_line_below_the_level_is_dropped(
    root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(Settings.from_env({**SECRETS, "LOG_LEVEL": "WARNING"}))
    logs.info(logging.getLogger("webhook.access"), "GET /healthz 200 0.1ms")
    assert capsys.readouterr().err == ""


def test_a_line_reaches_every_handler_someone_added(
    root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(Settings.from_env(SECRETS))
    added = logging.handlers.BufferingHandler(10)
    logging.getLogger().addHandler(added)
    logs.info(logging.getLogger("webhook.access"), "GET /healthz 200 0.1ms")
    assert [record.getMessage() for record in added.buffer] == ["GET /healthz 200 0.1ms"]
    assert "INFO webhook.access GET /healthz 200 0.1ms" in capsys.readouterr().err


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
