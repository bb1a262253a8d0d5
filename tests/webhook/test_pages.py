"""`GET /` and `GET /schedules/{name}`: the status pages behind `STATUS_AUTH`, and
`GET /schedules` behind the same credentials or the bearer `TRIGGER_TOKEN`; in Chromium too."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from jobs.config import Settings
from jobs.digest.ledger import RunRecord
from jobs.scheduling import status
from jobs.scheduling.file import load
from tests.conftest import ROOT, LiveServer
from tests.scheduling.test_status import STATUS_AUTH, Board, board_of
from webhook.app import create_app
from webhook.pages import chart

TOKEN = "trigger-token-for-pages-0123456789"


@pytest.fixture(scope="module")
def board(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Board]:
    yield from board_of(redis_url, tmp_path_factory)


def basic(credentials: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


@pytest.mark.parametrize("path", ["/", "/schedules/{weekly}"])
def test_the_pages_are_off_without_status_auth(board: Board, path: str) -> None:
    with board.app(STATUS_AUTH="") as client:
        answer = client.get(path.format(weekly=board.weekly))
    assert answer.status_code == 503
    assert answer.json() == {"error": "STATUS_AUTH is not set: the status pages are off"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("ops:wrong"),
        basic("someone:correct horse battery"),
        {"Authorization": "Basic !!!not base64"},
        {"Authorization": f"Bearer {TOKEN}"},  # the token opens /schedules, not the pages
    ],
)
def test_wrong_credentials_get_401_asking_for_basic_auth(
    board: Board, headers: dict[str, str]
) -> None:
    with board.app(TRIGGER_TOKEN=TOKEN) as client:
        answer = client.get("/", headers={"Authorization": "", **headers})
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith('Basic realm="Slack Digests"')


def test_get_schedules_takes_the_credentials_or_the_trigger_token(board: Board) -> None:
    with board.app(TRIGGER_TOKEN=TOKEN) as client:
        assert client.get("/schedules").status_code == 200
        bearer = client.get("/schedules", headers={"Authorization": f"Bearer {TOKEN}"})
        assert bearer.status_code == 200 and bearer.json()["schedules"]
        wrong = client.get("/schedules", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert client.get("/schedules", headers={"Authorization": ""}).status_code == 401
    with board.app(STATUS_AUTH="") as client:  # and no TRIGGER_TOKEN either
        assert client.get("/schedules").status_code == 503


def test_the_status_page_lists_every_schedule_in_words(board: Board) -> None:
    with board.app() as client:
        answer = client.get("/")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    page = answer.text
    assert board.weekly in page and board.paused in page
    assert status.in_words("0 9 * * MON") in page and "Europe/Berlin" in page
    assert f'href="http://testserver/schedules/{board.weekly}"' in page
    assert "disabled" in page
    assert "&lt;!channel&gt;" in page and "<!channel>" not in page  # the last run's error


def test_a_schedule_page_shows_its_runs_chart_and_actions(board: Board) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "jobs", "pause", board.weekly, "--until", "1d", "--reason", "audit"],
        cwd=ROOT,
        env={**board.env},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    try:
        with board.app() as client:
            page = client.get(f"/schedules/{board.weekly}").text
            missing = client.get("/schedules/no-such")
    finally:
        subprocess.run(
            [sys.executable, "-m", "jobs", "resume", board.weekly], cwd=ROOT, env=board.env
        )
    assert "the app is not in &lt;!channel&gt;" in page  # the failed run's error, escaped
    assert page.count('class="run"') == 2 and "manual" in page and "scheduled" in page
    assert "audit" in page and "paused by cli" in page
    assert missing.status_code == 404


def test_the_chart_is_messages_per_run_oldest_first() -> None:
    def run(slot: str, messages: int | None) -> RunRecord:
        totals = None if messages is None else {"messages": messages}
        return RunRecord(f"s@{slot}", "s", slot, False, "delivered", 0.0, 1.0, totals=totals)

    newest_first = [run("c", 50), run("b", None), run("a", 200)]
    assert [bar["height"] for bar in chart(newest_first)] == [100, 25]
    assert chart([run("a", 0)]) == [{"height": 2, "label": "a: 0 messages"}]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def browser() -> Iterator[object]:
    binary = chromium()
    if binary is None:
        pytest.skip("no chromium on PATH: scripts/install installs it from the system packages")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=binary, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def test_the_pages_in_chromium(board: Board, browser: object) -> None:
    from playwright.sync_api import Browser

    assert isinstance(browser, Browser)
    # A slot run here, by the worker, shows on its schedule's page: paused, so it is skipped
    # without reaching Slack.
    schedule = load(board.schedules)[board.weekly]
    slot = schedule.previous_slot(schedule.previous_slot(schedule.latest_slot(datetime.now(UTC))))
    digests = [sys.executable, "-m", "jobs"]
    subprocess.run([*digests, "pause", board.weekly], cwd=ROOT, env=board.env, check=True)
    try:
        ran = subprocess.run(
            [*digests, "trigger", board.weekly, "--slot", slot.isoformat(), "--json"],
            cwd=ROOT,
            env=board.env,
            capture_output=True,
            text=True,
        )
    finally:
        subprocess.run([*digests, "resume", board.weekly], cwd=ROOT, env=board.env, check=True)
    assert json.loads(ran.stdout)["reason"] == "paused", ran.stderr
    user, password = STATUS_AUTH.split(":")
    with LiveServer(create_app(Settings.from_env(board.env))) as server:
        base = f"http://127.0.0.1:{server.port}"
        context = browser.new_context(
            http_credentials={"username": user, "password": password},
            viewport={"width": 390, "height": 844},  # a phone
        )
        page = context.new_page()
        assert page.goto(f"{base}/").status == 200  # type: ignore[union-attr]
        rows = page.locator("tbody tr")
        assert rows.count() == 2
        assert board.weekly in rows.first.inner_text()
        page.click(f"text={board.weekly}")
        page.wait_for_url(f"{base}/schedules/{board.weekly}")
        newest = page.locator("tr.run").first.inner_text()
        assert slot.isoformat() in newest and "skipped" in newest and "paused" in newest
        context.close()
        stranger = browser.new_context(http_credentials={"username": user, "password": "no"})
        answer = stranger.new_page().goto(f"{base}/")
        assert answer is not None and answer.status == 401
        stranger.close()
