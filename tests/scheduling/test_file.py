"""schedules.yaml: loading, errors that name the file and field, and each slot's window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time

from bench.limits import largest_file
from jobs.cli import main
from jobs.config import get_settings
from jobs.errors import ScheduleError
from jobs.scheduling import limits
from jobs.scheduling.file import Problem, load, validate
from jobs.scheduling.slots import Schedule, parse_slot
from tests.conftest import ROOT

BERLIN = ZoneInfo("Europe/Berlin")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "schedules.yaml"
    path.write_text(text)
    return path


def test_the_repository_file_loads() -> None:
    schedules = load(ROOT / "schedules.yaml")
    assert schedules["eng-weekly"].timezone == "Europe/Berlin"
    assert schedules["support-daily"].window == timedelta(hours=24)


def test_defaults_apply_and_schedules_override_them(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
version: 1
defaults: {timezone: Asia/Tokyo, skip_if_quiet: false}
schedules:
  - {name: a, cron: "0 9 * * *", channels: ["#eng"], deliver: {slack: ["#d"]}}
  - {name: b, cron: "0 9 * * *", channels: ["C0123ABCD"], timezone: UTC, skip_if_quiet: true,
     sections: [threads], timeout: 5m, deliver: {email: [x@example.com]}}
""",
    )
    a, b = load(path).values()
    assert (a.timezone, a.skip_if_quiet, a.slack) == ("Asia/Tokyo", False, ("#d",))
    assert (b.timezone, b.skip_if_quiet, b.sections) == ("UTC", True, ("threads",))
    assert b.timeout == timedelta(minutes=5) and b.email == ("x@example.com",)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('{name: Bad_Name, cron: "0 9 * * *", channels: [a]}', "schedules[0].name"),
        ('{name: a, cron: "0 25 * * *", channels: [a]}', "schedules[0] (a).cron"),
        ('{name: a, cron: "0 9 * * *", channels: [a], timezone: Mars/Base}', "(a).timezone"),
        ('{name: a, cron: "0 9 * * *", channels: [a], window: 7 days}', "(a).window"),
        ('{name: a, cron: "0 9 * * *", channels: [a], colour: red}', "unknown key 'colour'"),
        ('{name: a, cron: "0 9 * * *", channels: [a], sections: [gossip]}', "(a).sections"),
        ('{name: a, cron: "0 9 * * *"}', "(a).channels"),
    ],
)
def test_errors_name_the_file_and_the_field(tmp_path: Path, entry: str, message: str) -> None:
    path = write(tmp_path, f"version: 1\nschedules:\n  - {entry}\n")
    with pytest.raises(ScheduleError) as raised:
        load(path)
    assert str(path) in str(raised.value)
    assert message in str(raised.value)


def test_repeated_names_are_an_error(tmp_path: Path) -> None:
    entry = '{name: a, cron: "0 9 * * *", channels: [a]}'
    path = write(tmp_path, f"version: 1\nschedules:\n  - {entry}\n  - {entry}\n")
    with pytest.raises(ScheduleError, match=r"schedules\[1\] \(a\).name: 'a' is repeated"):
        load(path)


def test_a_weekly_window_is_exactly_the_week_before_the_slot() -> None:
    weekly = Schedule(name="w", cron="0 9 * * MON", channels=("#eng",), timezone="Europe/Berlin")
    slot = datetime(2026, 11, 23, 9, tzinfo=BERLIN)
    window = weekly.window_for(slot)
    assert window.start == datetime(2026, 11, 16, 9, tzinfo=BERLIN)
    assert window.end == slot
    # The next slot's window starts where this one ended: no gap, no overlap.
    assert weekly.window_for(slot + timedelta(days=7)).start == window.end


def test_a_window_across_a_dst_change_covers_the_wall_clock_week() -> None:
    weekly = Schedule(name="w", cron="0 9 * * MON", channels=("#eng",), timezone="Europe/Berlin")
    window = weekly.window_for(datetime(2026, 10, 26, 9, tzinfo=BERLIN))
    assert window.start == datetime(2026, 10, 19, 9, tzinfo=BERLIN)
    # 25 October fell back an hour: the week from Monday 09:00 to Monday 09:00 lasts 7d 1h.
    elapsed = window.end.astimezone(UTC) - window.start.astimezone(UTC)
    assert elapsed == timedelta(days=7, hours=1)


def test_a_manual_slot_has_the_length_of_the_period_around_it() -> None:
    daily = Schedule(name="d", cron="30 8 * * *", channels=("#eng",))
    asked = datetime(2026, 11, 24, 15, 12, tzinfo=UTC)
    window = daily.window_for(asked)
    assert (window.start, window.end) == (asked - timedelta(days=1), asked)
    assert daily.latest_slot(asked) == datetime(2026, 11, 24, 8, 30, tzinfo=UTC)


def test_a_configured_window_overrides_the_period() -> None:
    hourly = Schedule(name="h", cron="0 * * * *", channels=("#a",), window=timedelta(days=1))
    slot = datetime(2026, 11, 24, 10, tzinfo=UTC)
    assert hourly.window_for(slot).start == slot - timedelta(days=1)


def test_latest_slot_includes_the_instant_itself() -> None:
    daily = Schedule(name="d", cron="0 9 * * *", channels=("#a",), timezone="Europe/Berlin")
    slot = datetime(2026, 11, 24, 9, tzinfo=BERLIN)
    assert daily.latest_slot(slot) == slot
    assert daily.latest_slot(slot - timedelta(seconds=1)) == slot - timedelta(days=1)


def test_slots_are_read_in_the_schedules_zone() -> None:
    daily = Schedule(name="d", cron="0 9 * * *", channels=("#a",), timezone="Europe/Berlin")
    assert parse_slot("2026-11-24T08:00:00Z", daily) == datetime(2026, 11, 24, 9, tzinfo=BERLIN)
    with pytest.raises(ScheduleError, match="no UTC offset"):
        parse_slot("2026-11-24T08:00:00", daily)


BROKEN = """\
version: 1
defaults:
  timzone: UTC
schedules:
  - name: eng-weekly
    cron: "0 9 * * MON"
    timezone: Europe/Berln
    channels: []
    window: 7 days
    deliver:
      slack: ["#eng-digest", "Not A Channel"]
      email: ["eng@", "ok@example.com"]
    sections: [summary, thread]
    enabled: maybe
  - name: eng-weekly
    cron: "0 25 * * *"
    cron: "0 9 * * *"
    channels: ["#eng"]
    deliver: {slack: ["#eng-digest"]}
"""


def test_every_problem_is_reported_at_once_with_its_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, BROKEN)
    schedules, problems = validate(path)
    assert schedules == {}
    assert [(p.line, p.field) for p in problems] == [
        (3, "defaults.timzone"),
        (7, "schedules[0] (eng-weekly).timezone"),
        (8, "schedules[0] (eng-weekly).channels"),
        (9, "schedules[0] (eng-weekly).window"),
        (11, "schedules[0] (eng-weekly).deliver.slack[1]"),
        (12, "schedules[0] (eng-weekly).deliver.email[0]"),
        (13, "schedules[0] (eng-weekly).sections[1]"),
        (14, "schedules[0] (eng-weekly).enabled"),
        (15, "schedules[1] (eng-weekly).name"),
        (16, "schedules[1] (eng-weekly).cron"),
        (17, "schedules[1] (eng-weekly).cron"),
    ]
    shown = [str(p) for p in problems]
    assert (
        shown[0] == f"{path}:3: defaults.timzone: unknown key 'timzone': did you mean 'timezone'?"
    )
    assert "did you mean Europe/Berlin" in shown[1]
    assert "like 30s, 15m, 24h or 7d" in shown[3]
    assert "did you mean 'threads'?" in shown[6]
    assert "'eng-weekly' is repeated (first at line 5)" in shown[8]
    assert "out of range" in shown[9]
    assert shown[10].endswith("repeated key (first at line 16)")
    with pytest.raises(ScheduleError) as raised:
        load(path)
    assert str(raised.value).splitlines() == shown


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ("timeout: 2h", "2h is out of range: it must be from 1s to 1h"),
        ("timeout: 0s", "0s is out of range"),
        ("jitter: -5s", "'-5s' is not a duration"),
        ("catchup: 90", "'90' is not a duration like 30s"),
        ('cron: "H 9 * * *"', "H and R differ per process"),
        ('cron: "0 9 * * * * 2030"', "has 7 fields"),
        ('cron: "0 9 31 2 *"', "never fires: day 31 of the month never comes in those months"),
        ('cron: "0 25 * * *"', "the hour field '25' is out of range: hours are 0 to 23"),
        ('cron: "61 * * * *"', "the minute field '61' is out of range: minutes are 0 to 59"),
        ('cron: "0 0 * 13 *"', "the month field '13' is out of range: months are 1 to 12"),
        ('cron: "0 0 * * 1-9"', "the day-of-week field '1-9' is out of range"),
        ('cron: "0 0 0 * *"', "the day-of-month field '0' is out of range: days are 1 to 31"),
        ('cron: "* * * * * 61"', "the second field '61' is out of range: seconds are 0 to 59"),
        ('cron: "*/0 * * * *"', "the minute field '*/0' is not valid"),
        ('cron: "0 0 * * 1#6"', "the day-of-week field '1#6' is not valid"),
        ('cron: "@fortnightly"', "'@fortnightly' is not one of @yearly, @annually, @monthly"),
        ("deliver: {}", "delivers nowhere: list a Slack channel or an email address"),
        ("deliver: {slack: [], email: []}", "delivers nowhere"),
        ("timezone: america/new_york", "did you mean America/New_York"),
        ("sections: []", "list at least one of summary"),
        ("deliver: {sms: [x]}", "unknown key 'sms': expected one of slack, email"),
        ("enabled: 1", "expected true or false, not '1'"),
        ("channels: [on]", "expected text, not 'on' (YAML reads it as bool: quote it)"),
        ("<<: {window: 1d}", "merge keys (<<) are not supported"),
    ],
)
def test_field_problems_say_what_would_be_valid(tmp_path: Path, fields: str, message: str) -> None:
    good = {
        "name": "a",
        "cron": '"0 9 * * *"',
        "channels": '["#a"]',
        "deliver": '{slack: ["#d"]}',
    }
    kept = [f"{key}: {value}" for key, value in good.items() if not fields.startswith(key)]
    path = write(tmp_path, f"version: 1\nschedules:\n  - {{{', '.join([*kept, fields])}}}\n")
    _, problems = validate(path)
    assert len(problems) == 1 and problems[0].line == 3
    assert message in problems[0].message
    assert "acceptable" not in problems[0].message  # croniter's words stay out


def test_a_schedule_without_deliver_is_an_error(tmp_path: Path) -> None:
    path = write(
        tmp_path, 'version: 1\nschedules:\n  - {name: a, cron: "0 9 * * *", channels: [a]}\n'
    )
    _, problems = validate(path)
    assert [str(p) for p in problems] == [
        f"{path}:3: schedules[0] (a).deliver: missing: every schedule needs somewhere to "
        'deliver, like {slack: ["#eng-digest"]} or {email: [eng@example.com]}'
    ]


def test_a_deliver_default_serves_every_schedule(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "version: 1\ndefaults: {deliver: {email: [x@example.com]}}\nschedules:\n"
        '  - {name: a, cron: "0 9 * * *", channels: [a]}\n',
    )
    assert load(path)["a"].email == ("x@example.com",)


@pytest.mark.parametrize("cron", ["0 0 31 2 0", "0 0 30 2 MON", "0 12 31 4,6 SAT"])
def test_a_day_of_month_or_day_of_week_cron_is_valid_and_has_slots(
    tmp_path: Path, cron: str
) -> None:
    entry = f'{{name: a, cron: "{cron}", channels: [a], deliver: {{slack: [d]}}}}'
    path = write(tmp_path, f"version: 1\nschedules:\n  - {entry}\n")
    schedule = load(path)["a"]
    slots = schedule.next_slots(datetime(2027, 1, 1, tzinfo=UTC), 3)
    weekday = {"0": 6, "MON": 0, "SAT": 5}[cron.split()[-1]]
    assert all(slot.weekday() == weekday for slot in slots)
    assert schedule.latest_slot(slots[-1]) == slots[-1]
    assert schedule.window_for(slots[1]).start == slots[0]


def test_a_tab_in_the_file_is_named_as_such(tmp_path: Path) -> None:
    path = write(tmp_path, 'version: 1\nschedules:\n\t- {name: a, cron: "0 9 * * *"}\n')
    _, problems = validate(path)
    assert [str(p) for p in problems] == [
        f"{path}:3: tabs are not allowed in YAML: indent with spaces"
    ]


def test_a_broken_default_is_reported_once_not_for_every_schedule(tmp_path: Path) -> None:
    entry = '{name: %s, cron: "0 9 * * *", deliver: {slack: [d]}}'
    path = write(
        tmp_path,
        f"version: 1\ndefaults: {{channels: []}}\nschedules:\n"
        f"  - {entry % 'a'}\n  - {entry % 'b'}\n",
    )
    schedules, problems = validate(path)
    assert schedules == {}
    assert [(p.line, p.field) for p in problems] == [(2, "defaults.channels")]


def test_a_file_that_is_not_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\nschedules:\n  - {name: a, cron: [\n")
    _, problems = validate(path)
    assert len(problems) == 1 and problems[0].line == 4
    assert problems[0].message.startswith("not valid YAML")


def test_problems_print_as_file_line_field_message() -> None:
    problem = Problem("schedules.yaml", 12, "schedules[0] (eng-weekly).cron", "bad")
    assert str(problem) == "schedules.yaml:12: schedules[0] (eng-weekly).cron: bad"
    assert str(Problem("x.yaml", 0, "", "cannot read")) == "x.yaml: cannot read"


def test_validate_prints_every_problem_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, BROKEN)
    assert main(["validate", str(path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 11 and all(line.startswith(f"{path}:") for line in lines)


@freeze_time("2026-11-24T12:00:00Z")
def test_validate_summarises_each_good_schedule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        """
version: 1
schedules:
  - {name: eng-weekly, cron: "0 9 * * MON", timezone: Europe/Berlin, channels: ["#eng"],
     deliver: {slack: ["#eng-digest"], email: [eng@example.com]}}
  - {name: paused, cron: "0 9 * * *", channels: ["#eng"], enabled: false,
     deliver: {slack: ["#eng-digest"]}}
""",
    )
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "eng-weekly  0 9 * * MON  Europe/Berlin  next 2026-11-30T09:00:00+01:00"
        "  to slack #eng-digest, email eng@example.com",
        "paused  0 9 * * *  UTC  next (disabled)  to slack #eng-digest",
    ]


def test_validate_reads_schedules_file_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "version: 1\nschedules: []\n")
    monkeypatch.setenv("SCHEDULES_FILE", str(path))
    get_settings.cache_clear()
    try:
        assert main(["validate"]) == 0
    finally:
        get_settings.cache_clear()
    assert capsys.readouterr().out == f"{path}: no schedules\n"


def entry(**fields: str) -> str:
    """One schedule in flow style: a valid one, with `fields` in place of its own."""
    values = {"name": "a", "cron": '"0 9 * * *"', "channels": "[C1]", "deliver": "{slack: [C2]}"}
    return "{" + ", ".join(f"{key}: {value}" for key, value in {**values, **fields}.items()) + "}"


def test_a_file_over_the_size_limit_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    # Past the limit lies YAML that does not parse: only the size may be reported.
    text = "version: 1\nschedules: []\n" + "#" * limits.MAX_BYTES + "\n[unclosed"
    path = write(tmp_path, text)
    _, problems = validate(path)
    assert [str(p) for p in problems] == [
        f"{path}: is {len(text):,} bytes: a schedules file holds at most 2,097,152 (2 MiB)"
    ]


def test_more_schedules_than_the_limit_are_refused_at_the_first_one_too_many(
    tmp_path: Path,
) -> None:
    count = limits.MAX_SCHEDULES + 5
    lines = [f"  - {entry(name=f's{i}')}" for i in range(count)]
    path = write(tmp_path, "version: 1\nschedules:\n" + "\n".join(lines) + "\n")
    schedules, problems = validate(path)
    first_extra = 3 + limits.MAX_SCHEDULES
    assert [str(p) for p in problems] == [
        f"{path}:{first_extra}: schedules: {count:,} schedules: a file holds at most 10,000"
    ]
    assert schedules == {}


@pytest.mark.parametrize(
    ("fields", "where", "message"),
    [
        ({"channels": "[" + ", ".join(["C1"] * 101) + "]"}, "channels", "101 items: at most 100"),
        (
            {"deliver": "{slack: [" + ", ".join(["C1"] * 101) + "]}"},
            "deliver.slack",
            "101 items: at most 100",
        ),
        (
            {"deliver": "{email: [" + ", ".join(["a@example.com"] * 101) + "]}"},
            "deliver.email",
            "101 items: at most 100",
        ),
        ({"sections": "[" + ", ".join(["summary"] * 101) + "]"}, "sections", "101 items: at most"),
        ({"name": "a" * 64}, "name", "is 64 characters: at most 63"),
        ({"channels": f"[C{'1' * 81}]"}, "channels[0]", "is 82 characters: at most 81"),
        ({"channels": f"['#{'e' * 80}']"}, "channels[0]", None),
        ({"channels": f"['#{'e' * 81}']"}, "channels[0]", "is 82 characters: at most 81"),
        ({"deliver": f"{{email: [{'a' * 243}@example.com]}}"}, "deliver.email[0]", "255 char"),
        ({"cron": '"' + "0," * 100 + '0 9 * * *"'}, "cron", "is 209 characters: at most 200"),
        ({"timezone": "Europe/" + "x" * 60}, "timezone", "is 67 characters: at most 64"),
    ],
)
def test_every_list_and_text_has_a_limit_named_with_its_field(
    tmp_path: Path, fields: dict[str, str], where: str, message: str | None
) -> None:
    path = write(tmp_path, f"version: 1\nschedules:\n  - {entry(**fields)}\n")
    _, problems = validate(path)
    if message is None:
        assert problems == []
        return
    assert len(problems) == 1
    assert problems[0].line == 3
    assert problems[0].field.endswith(f".{where}")
    assert message in problems[0].message
    assert len(problems[0].message) < 120  # a long value is not echoed whole


def test_the_largest_file_the_limits_allow_is_valid(tmp_path: Path) -> None:
    path = write(tmp_path, largest_file())
    assert path.stat().st_size <= limits.MAX_BYTES
    schedules, problems = validate(path)
    assert problems == []
    assert len(schedules) == limits.MAX_SCHEDULES


def test_a_file_broken_everywhere_is_reported_up_to_a_limit(tmp_path: Path) -> None:
    lines = [f"  - {entry(name=f's{i}', cron=repr('0 25 * * *'))}" for i in range(150)]
    path = write(tmp_path, "version: 1\nschedules:\n" + "\n".join(lines) + "\n")
    _, problems = validate(path)
    assert len(problems) == limits.MAX_PROBLEMS + 1
    assert str(problems[0]) == f"{path}: stopped looking after 100 problems: fix these first"
    assert all(p.field.endswith(".cron") for p in problems[1:])
