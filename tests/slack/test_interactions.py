"""`POST /slack/interactions` and the App Home: what each person sees and may click, against a
real worker and the Slack simulator; forged, malformed and doubled clicks."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from starlette.testclient import TestClient

from jobs import keys
from jobs.config import Settings
from jobs.scheduling import pause
from sandbox.slack import SlackSimulator
from sandbox.workspace import generate
from tests.conftest import Worker, environment, wait_until
from tests.signed import event_callback, signature_headers, signed_form, signed_json
from webhook.app import create_app

DB = 8
SCHEDULES = """\
version: 1
defaults: {{deliver: {{slack: ["#eng-digest"]}}}}
schedules:
  - {{name: {eng}, title: Engineering weekly, cron: "0 9 * * MON", channels: ["#eng"],
     owners: [{owner}]}}
  - {{name: {everyone}, cron: "0 9 * * *", channels: ["#general"]}}
  - {{name: {secret}, cron: "0 9 * * *", channels: ["#general", "#leadership"]}}
"""


def click(user: str, action_id: str, value: str, action_ts: str | None = None) -> dict[str, Any]:
    """A `block_actions` payload from a button in the Home tab."""
    return {
        "type": "block_actions",
        "team": {"id": "T0001"},
        "user": {"id": user},
        "api_app_id": "A0001",
        "token": "deprecated-verification-token",
        "container": {"type": "view", "view_id": f"V{user[1:]}"},
        "trigger_id": "1.2.3",
        "view": {"id": f"V{user[1:]}", "type": "home"},
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": f"schedule:{value}",
                "value": value,
                "action_ts": action_ts or f"{time.time():.6f}",
            }
        ],
    }


def submission(
    user: str, schedule: str, choice: str = "-", date: str | None = None
) -> dict[str, Any]:
    """The pause dialog's `view_submission`: a choice of how long, or a date."""
    values: dict[str, Any] = {
        "for": {"for": {"type": "static_select", "selected_option": {"value": choice}}},
        "date": {"date": {"type": "datepicker", "selected_date": date}},
    }
    return {
        "type": "view_submission",
        "team": {"id": "T0001"},
        "user": {"id": user},
        "view": {
            "id": "VM00000001",
            "hash": f"{time.time():.6f}",
            "callback_id": "digest_pause",
            "private_metadata": schedule,
            "state": {"values": values},
        },
    }


def form_of(payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    return signed_form({"payload": json.dumps(payload)})


@dataclass
class Home:
    slack: SlackSimulator
    client: redis.Redis
    env: dict[str, str]
    eng: str
    everyone: str
    secret: str  # reads a private channel too
    owner: str  # owns `eng`, in #eng
    admin: str
    member: str  # in #eng, owns nothing
    outsider: str  # in #general only

    def app(self) -> TestClient:
        return TestClient(create_app(Settings.from_env(self.env)))

    def send(self, payload: dict[str, Any]) -> int:
        body, headers = form_of(payload)
        with self.app() as client:
            return client.post("/slack/interactions", content=body, headers=headers).status_code

    def open_home(self, user: str) -> dict[str, Any]:
        published = len(self.slack.slack.views.get(user, []))
        body, headers = signed_json(event_callback("app_home_opened", user=user, tab="home"))
        with self.app() as client:
            assert client.post("/slack/events", content=body, headers=headers).status_code == 200
        wait_until(lambda: len(self.slack.slack.views.get(user, [])) > published, "no Home tab")
        view = self.slack.home_of(user)
        assert view is not None
        return view


def text_of(view: dict[str, Any]) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


def buttons(view: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (element["action_id"], element["value"])
        for block in view["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]


@pytest.fixture(scope="module")
def home(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    workspace = generate(messages=30)
    by_name = {c["name"]: c["id"] for c in workspace.channels}
    eng_people = workspace.members[by_name["eng"]]
    general_only = [
        user["id"]
        for user in workspace.users
        if user["id"] in workspace.members[by_name["general"]] and user["id"] not in eng_people
    ]
    owner, member = eng_people[0], eng_people[1]
    leaders = workspace.members[by_name["leadership"]]
    outsider = next(u for u in general_only if u not in leaders)
    admin = next(
        u for u in workspace.members[by_name["general"]] if u not in (owner, member, outsider)
    )
    suffix = uuid.uuid4().hex[:6]
    eng, everyone, secret = f"eng-{suffix}", f"everyone-{suffix}", f"secret-{suffix}"
    path: Path = tmp_path_factory.mktemp("home") / "schedules.yaml"
    path.write_text(SCHEDULES.format(eng=eng, everyone=everyone, secret=secret, owner=owner))
    url = redis_url.rsplit("/", 1)[0] + f"/{DB}"
    with SlackSimulator(workspace) as slack:
        overrides = {
            "SLACK_API_URL": slack.url,
            "SLACK_BOT_TOKEN": slack.token,
            "SCHEDULES_FILE": str(path),
            "ADMIN_USERS": admin,
        }
        env = {**environment(url), **overrides}
        worker = Worker(url, overrides).start()
        client = redis.Redis.from_url(url, decode_responses=True)
        try:
            yield Home(slack, client, env, eng, everyone, secret, owner, admin, member, outsider)
        finally:
            worker.stop()
            client.close()


def test_an_admin_sees_every_schedule_with_its_buttons(home: Home) -> None:
    view = home.open_home(home.admin)
    shown = text_of(view)
    assert "Engineering weekly" in shown and home.everyone in shown
    assert "At 09:00, only on Monday" in shown  # the cron in words
    assert "Times in your timezone" in shown
    operable = {
        (action, name)
        for name in (home.eng, home.everyone, home.secret)
        for action in ("digest_run", "digest_pause")
    }
    assert operable <= set(buttons(view))
    assert ("digest_preview", home.eng) in buttons(view)


def test_an_owner_may_operate_their_schedule_only(home: Home) -> None:
    view = home.open_home(home.owner)
    assert "Engineering weekly" in text_of(view)
    assert ("digest_run", home.eng) in buttons(view)
    assert ("digest_run", home.everyone) not in buttons(view)  # ADMIN_USERS is set: not theirs


def test_a_member_sees_the_schedules_of_their_channels_without_buttons(home: Home) -> None:
    outsider = home.open_home(home.outsider)
    assert "Engineering weekly" not in text_of(outsider)  # not in #eng
    assert home.everyone in text_of(outsider) and home.secret in text_of(outsider)
    # Not theirs to run or pause; a private channel's digest is not theirs to preview either.
    assert buttons(outsider) == [("digest_preview", home.everyone)]
    member = home.open_home(home.member)
    assert "Engineering weekly" in text_of(member)
    assert ("digest_preview", home.eng) in buttons(member)
    assert not [b for b in buttons(member) if b[0] != "digest_preview"]


def test_pause_and_resume_from_the_home_tab(home: Home) -> None:
    opened = len(home.slack.slack.opened)
    assert home.send(click(home.owner, "digest_pause", home.eng)) == 200
    wait_until(lambda: len(home.slack.slack.opened) > opened, "no dialog asked until when")
    dialog = home.slack.slack.opened[-1]["view"]
    assert dialog["private_metadata"] == home.eng and dialog["callback_id"] == "digest_pause"
    assert not home.client.exists(keys.paused(home.eng)), "paused before the dialog was sent"
    sent = len(home.slack.direct)
    assert home.send(submission(home.owner, home.eng, "1w")) == 200
    wait_until(lambda: home.client.exists(keys.paused(home.eng)), "the dialog did not pause")
    state = json.loads(home.client.get(keys.paused(home.eng)) or "{}")
    assert state["who"] == home.owner and state["until"]
    wait_until(lambda: len(home.slack.direct) > sent, "no answer in a DM")
    answer = home.slack.direct[-1]
    assert answer["channel"] == home.owner and "Paused" in answer["text"]
    wait_until(
        lambda: (
            ("digest_resume", home.eng) in buttons(home.slack.home_of(home.owner) or {"blocks": []})
        ),
        "the Home tab was not refreshed with Resume",
    )
    assert home.send(click(home.owner, "digest_resume", home.eng)) == 200
    wait_until(lambda: not home.client.exists(keys.paused(home.eng)), "the click did not resume")
    logged = [(a["action"], a["who"]) for a in pause.actions(home.client, home.eng)][:2]
    assert logged == [("resume", home.owner), ("pause", home.owner)]


def test_a_refused_click_says_why_and_changes_nothing(home: Home) -> None:
    sent = len(home.slack.direct)
    queued = home.client.llen("celery")
    assert home.send(click(home.member, "digest_run", home.eng)) == 200
    wait_until(lambda: len(home.slack.direct) > sent, "no refusal in a DM")
    refusal = home.slack.direct[-1]
    assert refusal["channel"] == home.member
    assert refusal["text"].startswith(f"No run: only the owners of `{home.eng}` and the admins")
    assert home.client.llen("celery") <= queued
    assert not any(a["action"] == "run" for a in pause.actions(home.client, home.eng))


def test_a_double_click_runs_once(home: Home) -> None:
    before = [a for a in pause.actions(home.client, home.everyone) if a["action"] == "run"]
    now = time.time()
    first = click(home.admin, "digest_run", home.everyone, f"{now:.6f}")
    second = click(home.admin, "digest_run", home.everyone, f"{now + 0.3:.6f}")  # a later one
    assert home.send(first) == 200 and home.send(second) == 200
    wait_until(
        lambda: (
            len([a for a in pause.actions(home.client, home.everyone) if a["action"] == "run"])
            > len(before)
        ),
        "the click did not run",
    )
    time.sleep(1)
    runs = [a for a in pause.actions(home.client, home.everyone) if a["action"] == "run"]
    assert len(runs) == len(before) + 1


def test_unknown_actions_and_schedules_are_answered_and_change_nothing(home: Home) -> None:
    assert home.send(click(home.admin, "digest_explode", home.eng)) == 200
    sent = len(home.slack.direct)
    assert home.send(click(home.admin, "digest_pause", "no-such-schedule")) == 200
    wait_until(lambda: len(home.slack.direct) > sent, "no answer about the unknown schedule")
    assert "no schedule named `no-such-schedule`" in home.slack.direct[-1]["text"]
    assert not home.client.exists(keys.paused("no-such-schedule"))


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"payload=%7B%7D", {"X-Slack-Signature": "v0=forged"}, 401),
        (b"payload=not-json", None, 400),
        (b"nothing=here", None, 400),
        (b'{"type": "block_actions"}', {"Content-Type": "application/json"}, 400),
        (b"payload=" + b"%5B%5D", None, 400),  # a JSON list
        (b"payload=" + orjson.dumps({"type": "message_action"}), None, 200),  # not ours: ignored
    ],
)
def test_forged_or_malformed_interactions_get_a_clear_answer(
    home: Home, body: bytes, headers: dict[str, str] | None, status: int
) -> None:
    sent = {
        "Content-Type": "application/x-www-form-urlencoded",
        **signature_headers(body),
        **(headers or {}),
    }
    with home.app() as client:
        assert client.post("/slack/interactions", content=body, headers=sent).status_code == status


def test_a_stale_signature_is_refused(home: Home) -> None:
    body = b"payload=" + json.dumps(click(home.admin, "digest_run", home.eng)).encode()
    stale = signature_headers(body, timestamp=int(time.time()) - 3600)
    headers = {"Content-Type": "application/x-www-form-urlencoded", **stale}
    with home.app() as client:
        assert client.post("/slack/interactions", content=body, headers=headers).status_code == 401


def test_preview_to_me_sends_the_digest_to_them_alone(home: Home) -> None:
    posted, sent = len(home.slack.posted), len(home.slack.direct)
    assert home.send(click(home.member, "digest_preview", home.eng)) == 200
    wait_until(
        lambda: any("preview of" in d.get("text", "") for d in home.slack.direct[sent:]),
        "no preview came",
        60,
    )
    mine = home.slack.direct[sent:]
    assert all(d["channel"] == home.member for d in mine)
    assert any(d.get("blocks") for d in mine), "the digest itself was not sent"
    assert len(home.slack.posted) == posted, "a preview delivered somewhere else"


def test_a_private_channels_digest_is_previewed_only_to_its_members(home: Home) -> None:
    sent = len(home.slack.direct)
    assert home.send(click(home.outsider, "digest_preview", home.secret)) == 200
    wait_until(lambda: len(home.slack.direct) > sent, "no refusal")
    [refusal] = home.slack.direct[sent:]
    assert refusal["text"].startswith(f"No preview of `{home.secret}`: it reads a private channel")


def test_a_pause_dialog_with_a_past_date_says_so_and_does_not_pause(home: Home) -> None:
    sent = len(home.slack.direct)
    assert home.send(submission(home.owner, home.eng, date="2020-01-01")) == 200
    wait_until(lambda: len(home.slack.direct) > sent, "no answer to the dialog")
    assert "that is in the past" in home.slack.direct[-1]["text"]
    assert not home.client.exists(keys.paused(home.eng))


def test_a_dialog_from_someone_no_longer_an_owner_is_refused(home: Home) -> None:
    sent = len(home.slack.direct)
    assert home.send(submission(home.member, home.eng, "1d")) == 200
    wait_until(lambda: len(home.slack.direct) > sent, "no refusal")
    assert home.slack.direct[-1]["text"].startswith(f"No pause: only the owners of `{home.eng}`")
    assert not home.client.exists(keys.paused(home.eng))


def test_without_a_trigger_id_the_pause_button_pauses_until_resumed(home: Home) -> None:
    payload = click(home.admin, "digest_pause", home.everyone)
    del payload["trigger_id"]
    assert home.send(payload) == 200
    wait_until(lambda: home.client.exists(keys.paused(home.everyone)), "the click did not pause")
    assert json.loads(home.client.get(keys.paused(home.everyone)) or "{}")["until"] is None
    home.client.delete(keys.paused(home.everyone))
