"""Each request is one log line: method, route template, status, duration; nothing else."""

from __future__ import annotations

import logging

import pytest
from starlette.testclient import TestClient

from tests.signed import signed_json


def test_a_request_is_one_line_naming_the_route_not_the_id(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="webhook.access"):
        client.get("/tasks/not-an-issued-id")
    lines = [r.getMessage() for r in caplog.records if r.name == "webhook.access"]
    assert len(lines) == 1
    method, route, status, duration = lines[0].split()
    assert (method, route, status) == ("GET", "/tasks/{task_id}", "404")
    assert duration.endswith("ms") and float(duration[:-2]) >= 0


def test_request_bodies_and_signatures_stay_out_of_the_log(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    body, headers = signed_json({"type": "url_verification", "challenge": "secret-challenge"})
    with caplog.at_level(logging.INFO):
        assert client.post("/slack/events", content=body, headers=headers).status_code == 200
    logged = caplog.text
    assert "POST /slack/events 200" in logged
    assert "secret-challenge" not in logged and headers["X-Slack-Signature"] not in logged
