"""Pause and resume: when a pause ends, what it keeps, and `digests pause`/`resume`/`status`."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis

from jobs import keys
from jobs.config import Settings
from jobs.errors import ConfigError, ScheduleError
from jobs.scheduling import pause
from jobs.scheduling.slots import Schedule
from jobs.slack.commands import may_operate
from tests.webhook.test_triggers import QUIET_DB, Triggers, setup

NOW = datetime(2026, 12, 3, 10, 30, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("value", "until"),
    [
        ("2h", NOW + timedelta(hours=2)),
        ("1d", NOW + timedelta(days=1)),
        ("3 days", NOW + timedelta(days=3)),
        ("1w", NOW + timedelta(weeks=1)),
        ("90m", NOW + timedelta(minutes=90)),
        ("2026-12-24", datetime(2026, 12, 24, tzinfo=BERLIN)),  # midnight where it runs
        ("2026-12-24T09:00", datetime(2026, 12, 24, 9, tzinfo=BERLIN)),
        ("2026-12-24T09:00:00+00:00", datetime(2026, 12, 24, 9, tzinfo=UTC)),
    ],
)
def test_until_is_a_duration_a_date_or_a_time(value: str, until: datetime) -> None:
    assert pause.parse_until(value, NOW, BERLIN) == until


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("2026-12-01", "that is in the past"),
        ("0h", "that is in the past"),
        ("tomorrowish", "is not a duration like 2h, 1d or 1w, a date like 2026-12-24"),
        ("2026-13-01", "is not a duration like 2h"),
        ("500w", "at most a year ahead"),
    ],
)
def test_an_until_in_the_past_or_unreadable_says_why(value: str, error: str) -> None:
    with pytest.raises(ScheduleError, match=error):
        pause.parse_until(value, NOW, BERLIN)


def test_a_pause_lasts_until_its_until_and_is_logged(redis_client: redis.Redis) -> None:
    name = f"paused-{time.monotonic_ns()}"
    now = datetime.now(UTC)
    state = pause.pause(redis_client, name, "U0OWNER", now, now + timedelta(seconds=1), "freeze")
    assert pause.paused(redis_client, name, now) == state
    assert pause.paused(redis_client, name, now + timedelta(seconds=2)) is None
    time.sleep(2.1)
    assert not redis_client.exists(keys.paused(name)), "the key outlived its until"
    [logged] = pause.actions(redis_client, name)
    assert logged == {"action": "pause", **state.as_dict()}


def test_resume_ends_a_pause_once_and_only_that_is_logged(redis_client: redis.Redis) -> None:
    name = f"paused-{time.monotonic_ns()}"
    now = datetime.now(UTC)
    pause.pause(redis_client, name, "U0OWNER", now)
    assert pause.paused(redis_client, name, now + timedelta(days=400)) is not None  # no until
    assert pause.resume(redis_client, name, "U0ADMIN", now)
    assert not pause.resume(redis_client, name, "U0ADMIN", now)
    assert pause.paused(redis_client, name, now) is None
    assert [(a["action"], a["who"]) for a in pause.actions(redis_client, name)] == [
        ("resume", "U0ADMIN"),
        ("pause", "U0OWNER"),
    ]


@pytest.fixture
def quiet(redis_url: str, tmp_path: Path) -> Triggers:
    return setup(redis_url, QUIET_DB, tmp_path)


def test_digests_pause_and_resume_show_in_status(quiet: Triggers) -> None:
    done = quiet.cli("pause", quiet.name, "--until", "1w", "--reason", "holidays")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{quiet.name} paused by cli")
    assert done.stdout.rstrip().endswith("(holidays)")
    shown = json.loads(quiet.cli("status", quiet.name, "--json").stdout)
    [row] = shown["schedules"]
    assert row["paused"]["reason"] == "holidays" and row["paused"]["until"]
    table = quiet.cli("status").stdout
    assert f"{quiet.name} paused by cli" in table
    assert quiet.cli("resume", quiet.name).stdout == f"{quiet.name} resumed\n"
    assert quiet.cli("resume", quiet.name).stdout == f"{quiet.name} was not paused\n"
    [row] = json.loads(quiet.cli("status", quiet.name, "--json").stdout)["schedules"]
    assert row["paused"] is None


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["pause", "no-such", "--until", "1d"], "no schedule named 'no-such'"),
        (["pause", "{name}", "--until", "2020-01-01"], "that is in the past"),
        (["pause", "{name}", "--until", "soonish"], "is not a duration like 2h"),
        (["resume", "no-such"], "no schedule named 'no-such'"),
    ],
)
def test_digests_pause_refuses_what_it_cannot_do(
    quiet: Triggers, args: list[str], error: str
) -> None:
    done = quiet.cli(*(arg.format(name=quiet.name) for arg in args))
    assert done.returncode == 1 and error in done.stderr, done.stderr
    assert not quiet.redis.exists(keys.paused(quiet.name))


@pytest.mark.parametrize(
    ("owners", "admins", "user", "may"),
    [
        ((), "", "U0ANYONE", True),  # nobody named: as before, anyone
        (("U0OWNER",), "", "U0OWNER", True),
        (("U0OWNER",), "", "U0ANYONE", False),
        ((), "U0ADMIN", "U0ADMIN", True),
        ((), "U0ADMIN", "U0ANYONE", False),  # admins named: only they, for unowned schedules
        (("U0OWNER",), "U0ADMIN,U0OTHER", "U0OTHER", True),
    ],
)
def test_owners_and_admins_may_operate_a_schedule(
    owners: tuple[str, ...], admins: str, user: str, may: bool
) -> None:
    schedule = Schedule(name="s", cron="0 9 * * *", channels=("#eng",), owners=owners)
    settings = Settings.from_env({"ADMIN_USERS": admins})
    assert may_operate(schedule, user, settings) is may


def test_admin_users_must_be_user_ids() -> None:
    with pytest.raises(ConfigError, match="'alice' is not a Slack user ID"):
        Settings.from_env({"ADMIN_USERS": "U0ADMIN, alice"})
