"""The `digests` command line (also `python -m jobs`).

A person waits for every command, so each imports what it uses when it runs: `--help` and
`validate` load no Celery, Redis or Slack module.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.config import Settings, gaps, get_settings, mask_url
from jobs.errors import DigestsError, ScheduleError
from jobs.scheduling.file import schedules_file, validate
from jobs.scheduling.slots import Schedule, parse_slot

if TYPE_CHECKING:
    from jobs.queue import Run


def show_config(settings: Settings) -> list[str]:
    """The configuration, one `NAME value` a line, with secrets shown only as set or not."""

    def secret(value: object) -> str:
        return "(set)" if value else "(not set)"

    smtp = settings.smtp
    return [
        f"REDIS_URL             {mask_url(settings.redis.url)}",
        f"SLACK_SIGNING_SECRET  {secret(settings.slack_signing_secret)}",
        f"SLACK_BOT_TOKEN       {secret(settings.slack_bot_token)}",
        f"SLACK_API_URL         {settings.slack_api_url}",
        f"SMTP_URL              {f'{smtp.host}:{smtp.port}' if smtp else '(not set)'}",
        f"EMAIL_FROM            {settings.email_from or '(not set)'}",
        f"TRIGGER_TOKEN         {secret(settings.trigger_token)}",
        f"STATUS_AUTH           {secret(settings.status_auth)}",
        f"ADMIN_USERS           {','.join(sorted(settings.admin_users)) or '(not set)'}",
        f"SCHEDULES_FILE        {settings.schedules_file}",
        f"SENTRY_DSN            {secret(settings.sentry_dsn)}",
        f"PUBLIC_URL            {settings.public_url or '(not set)'}",
        f"PORT                  {settings.port}",
        f"LOG_LEVEL             {settings.log_level}",
        f"LOG_FORMAT            {settings.log_format}",
        f"LLM_API_URL           {mask_url(settings.llm_api_url or '(not set)')}",
        f"LLM_API_KEY           {secret(settings.llm_api_key)}",
        f"LLM_MODEL             {settings.llm_model}",
        f"LLM_TIMEOUT           {settings.llm_timeout:g}",
    ]


def check_config(settings: Settings) -> list[str]:
    """Whether Redis answers and the schedules load, and what each unset variable leaves undone."""
    from jobs.connections import UNREACHABLE, sync_redis, unreachable

    client = sync_redis(settings)
    try:
        client.ping()
        lines = [f"ok: Redis answers at {mask_url(settings.redis.url)}"]
    except UNREACHABLE as error:
        lines = [f"problem: {unreachable(settings.redis.url, error)}"]
    finally:
        client.close()
    loaded = schedules_file(settings.schedules_file).read()
    if loaded.errors:
        lines.append(f"problem: {settings.schedules_file} has errors: see `digests validate`")
    return lines + [f"missing: {gap}" for gap in gaps(settings)]


def schedule_named(settings: Settings, name: str) -> Schedule:
    return schedules_file(settings.schedules_file).read().get(name)


def preview(settings: Settings, args: argparse.Namespace) -> int:
    """Build the digest of the current window and show it; nothing is delivered."""
    from jobs.digest import helper

    schedule = schedule_named(settings, args.name)
    helper.start()  # first: its fork copies no thread and no connection

    from jobs.connections import sync_redis
    from jobs.digest.pipeline import build, scheduled
    from jobs.digest.render.blocks import slack_messages
    from jobs.digest.render.email import email_message
    from jobs.digest.unsubscribe import link_key
    from jobs.slack.api import web_client

    now = datetime.now().astimezone()
    cache = sync_redis(settings)
    client = web_client(settings, cache)
    built = build(client, cache, scheduled(cache, schedule, now), settings=settings)
    if args.blocks:
        parts = slack_messages(built.digest, built.names)
        print(json.dumps([{"text": p.text, "blocks": p.blocks} for p in parts], indent=2))
        return 0
    message = email_message(
        built.digest,
        built.names,
        schedule=schedule.name,
        sender=settings.email_from or "digests@localhost",
        recipient="preview@localhost",
        run_id=f"preview-{now.isoformat()}",
        public_url=settings.public_url,
        link_key=link_key(cache),
        now=now,
    )
    text, html = (part.get_content() for part in message.iter_parts())
    print(f"Subject: {message['Subject']}\n\n{text}")
    if args.html:
        Path(args.html).write_text(html)
        print(f"(HTML written to {args.html})", file=sys.stderr)
    return 0


def run(settings: Settings, args: argparse.Namespace) -> int:
    """A manual run: an ad-hoc slot at this moment, whose window ends now."""
    from jobs.queue import Run

    schedule = schedule_named(settings, args.name)
    moment = datetime.now().astimezone(schedule.zone)
    return started(settings, schedule, Run(schedule.name, moment, True, operator()), args)


def started(settings: Settings, schedule: Schedule, run: Run, args: argparse.Namespace) -> int:
    """Queue the run and print its task id; unless `--no-wait`, only when a worker is there to
    run it, and then follow it."""
    from jobs import queue
    from jobs.connections import sync_redis
    from jobs.follow import follow, no_worker

    client = sync_redis(settings)
    client.ping()  # a Redis that is down says so at once, before Celery retries to reach it
    missing = None if args.no_wait else no_worker(settings)
    if missing:
        print(f"digests: {missing}", file=sys.stderr)
        return 1
    task_id = queue.enqueue(client, queue.run_job(schedule, run)).task_id
    if args.no_wait:
        print(task_id)
        return 0
    try:
        print(
            f"queued {run.id} as task {task_id}",
            file=sys.stderr if args.json else sys.stdout,
            flush=True,
        )
        return follow(task_id, as_json=args.json)
    except KeyboardInterrupt:  # from the moment it is queued, the run goes on without us
        link = f" or {settings.public_url}tasks/{task_id}" if settings.public_url else ""
        gone = f"see how it ends with `digests status {schedule.name}`{link}"
        print(f"\nstopped following; the run goes on: {gone}", file=sys.stderr, flush=True)
        return 130


def trigger(settings: Settings, args: argparse.Namespace) -> int:
    """The current slot (or `--slot`), asked for as beat and `POST /triggers` ask: once a slot."""
    from jobs.queue import Run
    from jobs.scheduling.status import requested_slot

    schedule = schedule_named(settings, args.name)
    if not schedule.enabled:
        raise ScheduleError(f"{settings.schedules_file}: schedule {args.name!r} is disabled")
    slot = requested_slot(schedule, args.slot, datetime.now(schedule.zone))
    return started(settings, schedule, Run(schedule.name, slot), args)


def show_status(settings: Settings, args: argparse.Namespace) -> int:
    """What `GET /schedules` shows; exits 1 when the file has errors, so scripts notice."""
    from redis.exceptions import RedisError

    from jobs.connections import sync_redis
    from jobs.scheduling import status

    loaded = schedules_file(settings.schedules_file).read()
    if args.name:
        loaded.get(args.name)  # an unknown name is an error that names the file
    try:
        shown = status.read(sync_redis(settings), loaded, datetime.now(UTC))
    except (RedisError, OSError) as error:
        if redis_down(error):
            raise  # said as every command says it
        print(f"digests: cannot read Redis: {error}", file=sys.stderr)
        return 1
    if args.name:
        shown["schedules"] = [row for row in shown["schedules"] if row["name"] == args.name]
    print(json.dumps(shown, indent=2) if args.json else "\n".join(status_table(shown)))
    return 1 if shown["errors"] else 0


def status_table(shown: dict[str, Any]) -> list[str]:
    """A status report as a table, one schedule a line, then skipped slots and errors."""
    from collections import Counter

    from jobs.scheduling.pause import described
    from jobs.scheduling.status import calls_line, outcome

    rows = [("NAME", "ENABLED", "TIMEZONE", "CRON", "NEXT SLOT", "LAST SLOT", "LAST RUN")]
    for row in shown["schedules"]:
        upcoming = row["next"][0]["local"] if row["next"] else "-"
        enabled = "yes" if row["enabled"] else "no"
        cells = (row["name"], enabled, row["timezone"], row["cron"], upcoming)
        rows.append((*cells, row["last_slot"] or "-", outcome(row)))
    widths = [max(len(cells[i]) for cells in rows) for i in range(len(rows[0]) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(cells[:-1], widths, strict=True))
        + "  "
        + cells[-1]
        for cells in rows
    ]
    calls: Counter[str] = Counter()
    limited: Counter[str] = Counter()
    for row in shown["schedules"]:
        if row["paused"]:
            lines.append(f"{row['name']} {described(row['paused'])}")
        if row["skipped"]:
            lines.append(f"{row['name']} skipped {', '.join(row['skipped'])}")
        slack = row["slack_calls"]
        if slack and slack["calls"]:
            line = calls_line(slack["calls"], slack["rate_limited"])
            late = slack["lateness"]
            finished = "" if late is None else f"; finished {late:,.1f}s after its slot"
            lines.append(f"{row['name']} last run's Slack calls: {line}{finished}")
            calls.update(slack["calls"])
            limited.update(slack["rate_limited"])
    if calls:
        lines.append(
            f"Slack calls of the last runs: {sum(calls.values()):,} ({calls_line(calls, limited)})"
        )
    return lines + [f"error: {error}" for error in shown["errors"]]


def pause_schedule(settings: Settings, args: argparse.Namespace) -> int:
    """Pause a schedule: its slots are recorded as skipped until `--until` or `digests resume`."""
    from jobs.connections import sync_redis
    from jobs.scheduling import pause

    schedule = schedule_named(settings, args.name)
    now = datetime.now(UTC)
    until = pause.parse_until(args.until, now, schedule.zone) if args.until else None
    state = pause.pause(sync_redis(settings), schedule.name, operator(), now, until, args.reason)
    print(f"{schedule.name} {pause.described(state.as_dict())}")
    return 0


def resume_schedule(settings: Settings, args: argparse.Namespace) -> int:
    from jobs.connections import sync_redis
    from jobs.scheduling import pause

    schedule = schedule_named(settings, args.name)
    ended = pause.resume(sync_redis(settings), schedule.name, operator(), datetime.now(UTC))
    print(f"{schedule.name} resumed" if ended else f"{schedule.name} was not paused")
    return 0


def tick(settings: Settings, args: argparse.Namespace) -> int:
    """What one beat tick does: queue each schedule's due slots, once however often asked."""
    from jobs.connections import sync_redis
    from jobs.scheduling import tick as ticking

    loaded = schedules_file(settings.schedules_file).read()
    if loaded.errors and not loaded.schedules:
        raise ScheduleError("\n".join(loaded.errors))
    ticked = ticking.tick(sync_redis(settings), loaded.schedules.values(), datetime.now(UTC))
    if args.json:
        print(json.dumps(ticked.as_dict(), indent=2))
        return 0
    for run in ticked.enqueued:
        held = " (paused: it will be recorded as skipped)" if run.get("paused") else ""
        print(f"queued {run['schedule']}@{run['slot']} as task {run['task_id']}{held}")
    for slot in ticked.skipped:
        print(f"skipped {slot['schedule']}@{slot['slot']}: {slot['reason']}")
    for name in ticked.started:
        print(f"{name}: counting its slots from now")
    if not (ticked.enqueued or ticked.skipped or ticked.started):
        print("nothing due")
    return 0


def operator() -> str:
    """Who acts from the command line, for the schedule's action log."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in a bare container
        return "cli"


def check_schedules(settings: Settings, args: argparse.Namespace) -> int:
    """Every problem of the schedules file, one a line (exit 1), or a line per schedule."""
    path = Path(args.file) if args.file else settings.schedules_file
    schedules, problems = validate(path)
    if problems:
        print("\n".join(str(problem) for problem in problems))
        return 1
    now = datetime.now(UTC)
    for schedule in schedules.values():
        upcoming = schedule.next_slot(now).isoformat() if schedule.enabled else "(disabled)"
        places = [*(f"slack {c}" for c in schedule.slack), *(f"email {a}" for a in schedule.email)]
        print(
            f"{schedule.name}  {schedule.cron}  {schedule.timezone}  next {upcoming}"
            f"  to {', '.join(places) or 'nowhere'}"
        )
    if not schedules:
        print(f"{path}: no schedules")
    return 0


def show_next(settings: Settings, args: argparse.Namespace) -> int:
    """A schedule's next slots after now (or `--after`), local and UTC, one a line."""
    schedule = schedule_named(settings, args.name)
    after = parse_slot(args.after, schedule, "--after") if args.after else datetime.now(UTC)
    slots = [
        (slot.isoformat(), slot.astimezone(UTC).isoformat().replace("+00:00", "Z"))
        for slot in schedule.next_slots(after, args.n)
    ]
    if not schedule.enabled:
        print(f"({args.name} is disabled: these slots will not run)", file=sys.stderr)
    if args.json:
        print(json.dumps([{"local": local, "utc": utc} for local, utc in slots], indent=2))
    else:
        print("\n".join(f"{local}  {utc}" for local, utc in slots))
    return 0


def how_many(text: str) -> int:
    """argparse's reading of `-n`: a whole number from 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1")
    return int(text)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="digests", description="Slack Digests: scheduled digests of Slack channel activity."
    )
    commands = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.add_parser(
        "config",
        help="check the environment and show the configuration (secrets hidden)",
        description="Read every environment variable the service uses and report bad values.",
    )
    shown = commands.add_parser(
        "preview",
        help="build a schedule's digest of the current window and print it, delivering nothing",
    )
    shown.add_argument("name", help="the schedule's name in SCHEDULES_FILE")
    shown.add_argument("--html", metavar="FILE", help="also write the email's HTML to FILE")
    shown.add_argument("--blocks", action="store_true", help="print the Slack Block Kit JSON")
    ran = commands.add_parser(
        "run", help="run a schedule now (a manual run) and follow it until it ends"
    )
    ran.add_argument("name", help="the schedule's name in SCHEDULES_FILE")
    ran.add_argument("--no-wait", action="store_true", help="only enqueue; print the task id")
    ran.add_argument("--json", action="store_true", help="print the run's record as JSON")
    triggered = commands.add_parser(
        "trigger",
        help="run a schedule's current slot (or --slot), once however often asked; follow it",
    )
    triggered.add_argument("name", help="the schedule's name in SCHEDULES_FILE")
    triggered.add_argument("--slot", metavar="ISO", help="a past slot of the cron, with offset")
    triggered.add_argument("--no-wait", action="store_true", help="only enqueue; print the task id")
    triggered.add_argument("--json", action="store_true", help="print the run's record as JSON")
    shown_status = commands.add_parser(
        "status", help="each schedule's next slots, last slot and how its run ended"
    )
    shown_status.add_argument("name", nargs="?", help="only this schedule")
    shown_status.add_argument("--json", action="store_true", help="print GET /schedules' JSON")
    checked = commands.add_parser(
        "validate",
        help="check a schedules file: every problem with its line, or each schedule's next slot",
    )
    checked.add_argument("file", nargs="?", help="the file to check (default: SCHEDULES_FILE)")
    upcoming = commands.add_parser(
        "next", help="a schedule's next slots, in its zone and in UTC, one a line"
    )
    upcoming.add_argument("name", help="the schedule's name in SCHEDULES_FILE")
    upcoming.add_argument("-n", type=how_many, default=10, help="how many slots (default 10)")
    upcoming.add_argument("--after", metavar="ISO", help="an instant with offset (default: now)")
    paused = commands.add_parser(
        "pause", help="pause a schedule: its slots are skipped until --until or `digests resume`"
    )
    paused.add_argument("name", help="the schedule's name in SCHEDULES_FILE")
    paused.add_argument("--until", metavar="WHEN", help="2h, 1d, 1w, 2026-12-24 or an ISO time")
    paused.add_argument("--reason", default="", help="why, for the status page and the log")
    resumed = commands.add_parser("resume", help="resume a paused schedule")
    resumed.add_argument("name", help="the schedule's name in SCHEDULES_FILE")
    ticked = commands.add_parser(
        "tick", help="queue every schedule's due slots, as beat would, for an external scheduler"
    )
    ticked.add_argument("--json", action="store_true", help="print what was queued as JSON")
    upcoming.add_argument("--json", action="store_true", help="print a JSON list of {local, utc}")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = get_settings()
        if args.command == "config":
            print("\n".join([*show_config(settings), "", *check_config(settings)]))
            return 0
        return {
            "preview": preview,
            "run": run,
            "trigger": trigger,
            "status": show_status,
            "validate": check_schedules,
            "next": show_next,
            "pause": pause_schedule,
            "resume": resume_schedule,
            "tick": tick,
        }[args.command](settings, args)
    except DigestsError as error:
        print(f"digests: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # while following, `follow` says what goes on
        print("digests: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if not redis_down(error):
            raise
        from jobs.connections import unreachable

        print(f"digests: {unreachable(settings.redis.url, error)}", file=sys.stderr)
        return 1


def redis_down(error: BaseException) -> bool:
    """Whether `error` (or what caused it) is a failure to reach Redis; the modules that could
    raise one are loaded by then, and nothing is imported for the commands that need none."""
    if "redis" not in sys.modules:
        return False
    from jobs.connections import UNREACHABLE

    kinds: tuple[type[BaseException], ...] = UNREACHABLE
    if "kombu" in sys.modules:
        from kombu.exceptions import OperationalError

        kinds += (OperationalError,)
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, kinds):
            return True
        cause = cause.__cause__ or cause.__context__
    return False
