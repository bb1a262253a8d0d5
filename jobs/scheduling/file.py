"""`schedules.yaml`: validated with every problem's line and field, and read again only when it
changes.

`validate` reports all the file's problems at once, in line order, and the schedules it could
read; `SchedulesFile` is how every process reads the file (beat each tick, the web per request,
a worker per run): a `stat`, and a parse only when the file's content changed.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import yaml
from croniter import CroniterError, croniter

from jobs.config import USER_ID
from jobs.digest.model import SECTIONS, SUMMARIZERS
from jobs.errors import ScheduleError, UnknownSchedule
from jobs.garbage import collector_paused
from jobs.scheduling.limits import MAX_BYTES, MAX_ITEMS, MAX_LENGTH, MAX_PROBLEMS, MAX_SCHEDULES
from jobs.scheduling.slots import MAX_TIMEOUT, Schedule, format_duration, parse_duration, step

NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
# What the directory resolves: an ID, `#name` or `name`; never blanks, commas or a `#` within.
CHANNEL = re.compile(r"#?[^\s#,]+")
EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
)
# A hashed (`H`) or random (`R`) cron value differs per hash id or per process: no stable slots.
HASHED = re.compile(r"[hr](\(\d+-\d+\))?(/\d+)?", re.IGNORECASE)
TAG = "tag:yaml.org,2002:"
# What YAML's own error says of a tab ("found character that cannot start any token") does not.
TABS = "tabs are not allowed in YAML: indent with spaces"
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# No file has this stat (mtime, size, inode): the first read always parses the file.
NEVER_READ = (-1, -1, -1)


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a schedules file: where it is and what would be valid."""

    file: str
    line: int  # 1-based; 0 when the whole file is at fault
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


@dataclass(frozen=True)
class Loaded:
    """A schedules file as read: the schedules it could read, and the errors that keep it from
    being used (a broken file is something to show, not a crash)."""

    file: str
    schedules: dict[str, Schedule]
    errors: tuple[str, ...] = ()

    def get(self, name: str) -> Schedule:
        """The schedule called `name`; a broken file runs nothing, since beat would not run it."""
        if self.errors:
            raise ScheduleError("\n".join(self.errors))
        schedule = self.schedules.get(name)
        if schedule is None:
            raise UnknownSchedule(f"{self.file} has no schedule named {name!r}")
        return schedule


class SchedulesFile:
    """The file, parsed again only when its stat (mtime, size, inode) and then its content
    change: a `stat` costs microseconds, parsing YAML and crons milliseconds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stat: tuple[int, int, int] | None = NEVER_READ
        self.digest: bytes | None = None
        self.loaded = Loaded(str(path), {}, ("not read yet",))

    def refresh(self) -> bool:
        """Read the file if it changed; whether what it holds changed."""
        try:
            found = self.path.stat()
            stat: tuple[int, int, int] | None = (found.st_mtime_ns, found.st_size, found.st_ino)
        except OSError:
            stat = None
        if stat == self.stat:
            return False
        self.stat = stat
        try:
            digest: bytes | None = hashlib.sha256(self.path.read_bytes()).digest()
        except OSError:
            digest = None  # `validate` says why
        if digest is not None and digest == self.digest:
            return False  # touched, not changed
        self.digest = digest
        self.loaded = read(self.path)
        return True

    def read(self) -> Loaded:
        """The file as it is now."""
        self.refresh()
        return self.loaded


@cache
def schedules_file(path: Path) -> SchedulesFile:
    """The process's reader of the file at `path`, shared by everything that runs in it."""
    return SchedulesFile(path)


def read(path: Path) -> Loaded:
    """The file's schedules and its errors, as text."""
    schedules, problems = validate(path)
    return Loaded(str(path), schedules, tuple(str(problem) for problem in problems))


def load(path: Path) -> dict[str, Schedule]:
    """Every schedule of the file by name; raises `ScheduleError` listing every problem."""
    loaded = read(path)
    if loaded.errors:
        raise ScheduleError("\n".join(loaded.errors))
    return loaded.schedules


def validate(path: Path) -> tuple[dict[str, Schedule], list[Problem]]:
    """The file's valid schedules by name, and all its problems in the order of their lines."""
    with collector_paused():
        return _validate(path)


def _validate(path: Path) -> tuple[dict[str, Schedule], list[Problem]]:
    report = Report(str(path))
    try:
        with path.open("rb") as file:  # no more than the limit is read, let alone parsed
            data = file.read(MAX_BYTES + 1)
            if len(data) > MAX_BYTES:
                size = f"{os.fstat(file.fileno()).st_size:,}"
                limit = f"a schedules file holds at most {MAX_BYTES:,} (2 MiB)"
                return {}, [Problem(str(path), 0, "", f"is {size} bytes: {limit}")]
        text = data.decode("utf-8")
        root = yaml.compose(text, Loader=LOADER)
    except OSError as error:
        return {}, [Problem(str(path), 0, "", f"cannot read: {error.strerror}")]
    except UnicodeDecodeError:
        return {}, [Problem(str(path), 0, "", "is not UTF-8 text")]
    except yaml.MarkedYAMLError as error:
        line = error.problem_mark.line + 1 if error.problem_mark else 0
        if "\t" in "".join(text.splitlines()[line - 1 : line]):
            return {}, [Problem(str(path), line, "", TABS)]
        reason = ", ".join(part for part in (error.context, error.problem) if part)
        return {}, [Problem(str(path), line, "", f"not valid YAML: {reason}")]
    try:
        schedules = _document(report, root)
    except TooManyProblems:
        schedules = {}
        stop = f"stopped looking after {MAX_PROBLEMS} problems: fix these first"
        report.problems.append(Problem(str(path), 0, "", stop))
    return schedules, sorted(report.problems, key=lambda problem: problem.line)


class TooManyProblems(Exception):
    """Enough is reported: a file broken everywhere must not cost a problem per line."""


class Report:
    """Collects every problem of one file instead of stopping at the first (up to a limit)."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def __call__(self, node: yaml.Node, where: str, message: str) -> None:
        if len(self.problems) == MAX_PROBLEMS:
            raise TooManyProblems
        self.problems.append(Problem(self.file, node.start_mark.line + 1, where, message))


Parser = Callable[[Report, yaml.Node, str], Any]  # a value, or None once the problem is reported
Pairs = dict[str, tuple[yaml.Node, yaml.Node]]
TOP = ("version", "defaults", "schedules")
REQUIRED = {
    "name": "every schedule needs a name like eng-weekly",
    "cron": 'every schedule needs a cron like "0 9 * * MON"',
    "channels": 'every schedule needs channels to digest, like ["#eng"]',
    "deliver": 'every schedule needs somewhere to deliver, like {slack: ["#eng-digest"]} or '
    "{email: [eng@example.com]}",
}


def _document(report: Report, root: yaml.Node | None) -> dict[str, Schedule]:
    if root is None:
        report.problems.append(Problem(report.file, 0, "", "is empty: expected `version: 1`"))
        return {}
    top = _pairs(report, root, "the file")
    if top is None:
        return {}
    for key, (key_node, _) in top.items():
        if key not in TOP:
            report(key_node, key, _unknown(key, TOP))
    version = top.get("version")
    if version is None:
        report(root, "version", "missing: the file starts with `version: 1`")
    elif version[1].tag != f"{TAG}int" or version[1].value != "1":
        report(version[1], "version", f"{_shown(version[1])} is not a version; expected 1")
    defaults, broken = _defaults(report, top.get("defaults"))
    entries = top.get("schedules")
    if entries is None:
        report(root, "schedules", "missing: expected a list of schedules")
    elif not isinstance(entries[1], yaml.SequenceNode):
        report(entries[1], "schedules", f"expected a list of schedules, not {_shown(entries[1])}")
    else:
        return _schedules(report, entries[1].value, defaults, broken)
    return {}


def _defaults(
    report: Report, found: tuple[yaml.Node, yaml.Node] | None
) -> tuple[dict[str, Any], set[str]]:
    """The parsed defaults, and the keys whose default is broken (already reported)."""
    if found is None or found[1].tag == f"{TAG}null":
        return {}, set()
    pairs = _pairs(report, found[1], "defaults") or {}
    if "name" in pairs:
        name = pairs.pop("name")[0]
        report(name, "defaults.name", "each schedule has its own name: not a default")
    return _fields(report, pairs, "defaults", {k: v for k, v in FIELDS.items() if k != "name"})


def _schedules(
    report: Report, entries: list[yaml.Node], defaults: dict[str, Any], broken: set[str]
) -> dict[str, Schedule]:
    schedules: dict[str, Schedule] = {}
    lines: dict[str, int] = {}  # where each name first appeared
    if len(entries) > MAX_SCHEDULES:
        most = f"a file holds at most {MAX_SCHEDULES:,}"
        report(entries[MAX_SCHEDULES], "schedules", f"{len(entries):,} schedules: {most}")
        return schedules
    for index, entry in enumerate(entries):
        where = _label(entry, index)
        pairs = _pairs(report, entry, where)
        if pairs is None:
            continue
        reported = len(report.problems)
        values = {**defaults, **_fields(report, pairs, where, FIELDS)[0]}
        for key, hint in REQUIRED.items():
            if key not in pairs and key not in defaults and key not in broken:
                report(entry, f"{where}.{key}", f"missing: {hint}")
        name = values.pop("name", None)
        if name in lines:
            first = f"first at line {lines[name]}"
            report(pairs["name"][1], f"{where}.name", f"{name!r} is repeated ({first})")
        elif name is not None:
            lines[name] = pairs["name"][1].start_mark.line + 1
        if len(report.problems) == reported and not broken - pairs.keys():
            deliver = values.pop("deliver", {})
            schedules[name] = Schedule(name=name, **values, **deliver)
    return schedules


def _label(entry: yaml.Node, index: int) -> str:
    """How problems name a schedule: by index, and by name when it has a good one."""
    for key, value in entry.value if isinstance(entry, yaml.MappingNode) else ():
        if key.value == "name" and value.tag == f"{TAG}str" and _is_name(value.value):
            return f"schedules[{index}] ({value.value})"
    return f"schedules[{index}]"


def _pairs(report: Report, node: yaml.Node, where: str) -> Pairs | None:
    """A mapping's pairs by key; a repeated key is an error, not silently the last one."""
    if not isinstance(node, yaml.MappingNode):
        report(node, where, f"expected a mapping of keys to values, not {_shown(node)}")
        return None
    pairs: Pairs = {}
    for key_node, value_node in node.value:
        key = str(key_node.value)
        if key_node.tag == f"{TAG}merge":
            report(key_node, where, "merge keys (<<) are not supported: use defaults")
        elif key_node.tag != f"{TAG}str":
            report(key_node, where, f"keys are words, not {_shown(key_node)}")
        elif key in pairs:
            first = pairs[key][0].start_mark.line + 1
            report(key_node, f"{where}.{key}", f"repeated key (first at line {first})")
        else:
            pairs[key] = (key_node, value_node)
    return pairs


def _fields(
    report: Report, pairs: Pairs, where: str, parsers: dict[str, Parser]
) -> tuple[dict[str, Any], set[str]]:
    """Each pair's value parsed by its key's parser, and the keys that were unknown or bad."""
    values: dict[str, Any] = {}
    failed: set[str] = set()
    for key, (key_node, value_node) in pairs.items():
        if key not in parsers:
            report(key_node, f"{where}.{key}", _unknown(key, parsers))
            failed.add(key)
            continue
        value = parsers[key](report, value_node, f"{where}.{key}")
        if value is None:
            failed.add(key)
        else:
            values[key] = value
    return values, failed


def _unknown(key: str, valid: Any) -> str:
    close = difflib.get_close_matches(key, list(valid), n=1) if len(key) < 40 else []
    if close:
        return f"unknown key {_quoted(key)}: did you mean {close[0]!r}?"
    return f"unknown key {_quoted(key)}: expected one of {', '.join(valid)}"


def _quoted(text: str) -> str:
    """`text` as problems show it: whole when short, else its start (the line says where)."""
    return repr(text) if len(text) <= 40 else f"{text[:30]!r}…"


def _shown(node: yaml.Node) -> str:
    if isinstance(node, yaml.ScalarNode):
        return "nothing" if node.tag == f"{TAG}null" else _quoted(str(node.value))
    return "a list" if isinstance(node, yaml.SequenceNode) else "a mapping"


def _text(report: Report, node: yaml.Node, where: str) -> str | None:
    if isinstance(node, yaml.ScalarNode) and node.tag == f"{TAG}str":
        return str(node.value)
    read = (
        node.tag.removeprefix(TAG) if isinstance(node, yaml.ScalarNode) and not node.style else ""
    )
    hint = f" (YAML reads it as {read}: quote it)" if read and read != "null" else ""
    report(node, where, f"expected text, not {_shown(node)}{hint}")
    return None


def _checked(problem: Callable[[str], str | None], longest: int) -> Parser:
    """A parser of text of at most `longest` characters that `problem` accepts (says nothing
    about); the length is checked first, so no check ever sees a huge value."""

    def parse(report: Report, node: yaml.Node, where: str) -> str | None:
        text = _text(report, node, where)
        if text is not None and len(text) > longest:
            report(node, where, f"{_quoted(text)} is {len(text):,} characters: at most {longest}")
            return None
        message = None if text is None else problem(text)
        if message is not None:
            report(node, where, message)
            return None
        return text

    return parse


def _listed(problem: Callable[[str], str | None], longest: int, empty: str | None = None) -> Parser:
    """A parser of a list of at most `MAX_ITEMS` texts that `problem` accepts; `empty` says why
    none is wrong."""
    item = _checked(problem, longest)

    def parse(report: Report, node: yaml.Node, where: str) -> tuple[str, ...] | None:
        if not isinstance(node, yaml.SequenceNode):
            report(node, where, f"expected a list like [a, b], not {_shown(node)}")
            return None
        if len(node.value) > MAX_ITEMS:
            report(node, where, f"{len(node.value):,} items: at most {MAX_ITEMS}")
            return None
        if empty is not None and not node.value:
            report(node, where, empty)
            return None
        values = [item(report, child, f"{where}[{i}]") for i, child in enumerate(node.value)]
        return None if None in values else tuple(values)

    return parse


def _lasting(
    least: timedelta = timedelta(0), most: timedelta | None = None, why: str = ""
) -> Parser:
    """A parser of a duration from `least` to `most`; `why` explains the limits."""
    limits = f"from {format_duration(least)}" + (f" to {format_duration(most)}" if most else "")
    limits += why

    def parse(report: Report, node: yaml.Node, where: str) -> timedelta | None:
        if not isinstance(node, yaml.ScalarNode):
            report(node, where, f"expected a duration like 30s, 15m, 24h or 7d, not {_shown(node)}")
            return None
        text = str(node.value)  # whatever YAML made of it (`90` is an int): the words say more
        value = parse_duration(text)
        if value is None:
            report(node, where, f"{text!r} is not a duration like 30s, 15m, 24h or 7d")
        elif value < least or (most is not None and value > most):
            report(node, where, f"{text} is out of range: it must be {limits}")
        else:
            return value
        return None

    return parse


def _boolean(report: Report, node: yaml.Node, where: str) -> bool | None:
    if isinstance(node, yaml.ScalarNode) and node.tag == f"{TAG}bool":
        return str(node.value).lower() in ("true", "yes", "on")
    report(node, where, f"expected true or false, not {_shown(node)}")
    return None


def _deliver(report: Report, node: yaml.Node, where: str) -> dict[str, tuple[str, ...]] | None:
    pairs = _pairs(report, node, where)
    if pairs is None:
        return None
    deliver, failed = _fields(report, pairs, where, DESTINATIONS)
    if failed:
        return None
    if not any(deliver.values()):
        report(node, where, "delivers nowhere: list a Slack channel or an email address")
        return None
    return deliver


def _is_name(text: str) -> bool:
    return len(text) <= MAX_LENGTH["name"] and NAME.fullmatch(text) is not None


def _name_problem(name: str) -> str | None:
    if _is_name(name):
        return None
    return f"{name!r} is not a name: use lowercase letters, digits and '-', like eng-weekly"


@lru_cache(maxsize=65536)
def _cron_problem(expression: str) -> str | None:
    """Why `expression` is not a cron we can run, or None; cached: croniter's parse is slow.

    What croniter runs is valid, including a day of the month that never comes in the months
    named, since a day-of-week then still fires it (`0 0 31 2 0`: Sundays in February).
    """
    fields = expression.split()
    expected = (
        "expected 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds last"
    )
    if expression.startswith("@"):
        if expression.lower() not in NICKNAMES:
            return f"{expression!r} is not one of {', '.join(NICKNAMES)}"
        return None
    if len(fields) not in (5, 6):
        return f"{expression!r} has {len(fields)} fields; {expected}"
    if any(HASHED.fullmatch(part) for value in fields for part in value.split(",")):
        return f"{expression!r}: H and R differ per process; spread runs with jitter instead"
    try:
        croniter.expand(expression)
    except CroniterError:
        return f"{expression!r} is not a valid cron: {_cron_field_problem(fields) or expected}"
    try:
        step(expression, datetime(2000, 1, 1), forward=True)
    except ScheduleError:
        if any(mark in expression.upper() for mark in "#LW"):
            # `#`, `L` and `W` days must match both day fields, which can never happen.
            return f"{expression!r} never fires: with #, L or W both day fields must match"
        return (
            f"{expression!r} never fires: day {fields[2]} of the month never comes in those "
            "months; name a day-of-week too, or another day"
        )
    return None


def _cron_field_problem(fields: list[str]) -> str | None:
    """Which field of a cron croniter refuses, and why, in our words; None if none alone is."""
    for index, value in enumerate(fields):
        probe = ["*"] * len(fields)
        probe[index] = value
        try:
            croniter.expand(" ".join(probe))
        except CroniterError:
            name, plural, low, high, words = CRON_FIELDS[index]
            # The numbers a value names, not its steps (`*/5`) or nth weekdays (`1#2`).
            numbers = [int(n) for n in re.findall(r"(?<![/#\d])\d+", value)]
            if any(not low <= number <= high for number in numbers):
                return f"the {name} field {value!r} is out of range: {plural} are {low} to {high}"
            return (
                f"the {name} field {value!r} is not valid: expected {plural} {low} to {high}"
                f"{words}, lists (1,2), ranges (1-5) or steps (*/5)"
            )
    return None


@lru_cache(maxsize=4096)
def _zone_problem(name: str) -> str | None:
    """Why `name` is not an IANA zone, with the closest ones, or None."""
    try:
        ZoneInfo(name)
        return None
    except (ZoneInfoNotFoundError, ValueError, OSError):
        pass
    zones = _zones_by_folded_name()
    close = difflib.get_close_matches(name.casefold(), zones, n=3, cutoff=0.7)
    if close:
        return (
            f"{name!r} is not an IANA time zone: did you mean {', '.join(zones[c] for c in close)}?"
        )
    return f"{name!r} is not an IANA time zone: expected a name like Europe/Berlin or UTC"


@cache
def _zones_by_folded_name() -> dict[str, str]:
    return {zone.casefold(): zone for zone in available_timezones()}


def _channel_problem(ref: str) -> str | None:
    if CHANNEL.fullmatch(ref):
        return None
    return f"{ref!r} is not a channel ID like C0123ABCD or a channel name like #eng"


def _email_problem(address: str) -> str | None:
    if EMAIL.fullmatch(address):
        return None
    return f"{address!r} is not an email address like eng@example.com"


def _title_problem(title: str) -> str | None:
    if title.strip() and title.isprintable():
        return None
    return f"{_quoted(title)} is not a title: one line of printable text, like Engineering weekly"


def _user_problem(user: str) -> str | None:
    if USER_ID.fullmatch(user):
        return None
    return f"{_quoted(user)} is not a Slack user ID like U0123ABCD"


def _summarizer_problem(summarizer: str) -> str | None:
    if summarizer in SUMMARIZERS:
        return None
    return f"{_quoted(summarizer)} is not a summarizer: expected {' or '.join(SUMMARIZERS)}"


def _section_problem(section: str) -> str | None:
    if section in SECTIONS:
        return None
    close = difflib.get_close_matches(section, SECTIONS, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"expected one of {', '.join(SECTIONS)}"
    return f"{section!r} is not a section: {hint}"


# Each cron field: its name, what it counts, its range, and the names it also takes.
CRON_FIELDS = (
    ("minute", "minutes", 0, 59, ""),
    ("hour", "hours", 0, 23, ""),
    ("day-of-month", "days", 1, 31, " or L"),
    ("month", "months", 1, 12, " or JAN to DEC"),
    ("day-of-week", "days", 0, 7, " or SUN to SAT"),
    ("second", "seconds", 0, 59, ""),
)
NICKNAMES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")

DESTINATIONS: dict[str, Parser] = {
    "slack": _listed(_channel_problem, MAX_LENGTH["channel"]),
    "email": _listed(_email_problem, MAX_LENGTH["email"]),
}
FIELDS: dict[str, Parser] = {
    "name": _checked(_name_problem, MAX_LENGTH["name"]),
    "cron": _checked(_cron_problem, MAX_LENGTH["cron"]),
    "timezone": _checked(_zone_problem, MAX_LENGTH["timezone"]),
    "channels": _listed(
        _channel_problem, MAX_LENGTH["channel"], empty='list at least one channel, like ["#eng"]'
    ),
    "window": _lasting(least=timedelta(seconds=1)),
    "deliver": _deliver,
    "sections": _listed(
        _section_problem,
        40,  # longer than any section: a typo still gets its "did you mean"
        empty=f"list at least one of {', '.join(SECTIONS)}",
    ),
    "skip_if_quiet": _boolean,
    "enabled": _boolean,
    "jitter": _lasting(),
    "catchup": _lasting(),
    "timeout": _lasting(
        least=timedelta(seconds=1),
        most=MAX_TIMEOUT,
        why=", the workers' hard limit for any task",
    ),
    "title": _checked(_title_problem, MAX_LENGTH["title"]),
    "owners": _listed(_user_problem, MAX_LENGTH["user"]),
    "summarizer": _checked(_summarizer_problem, 40),
}
