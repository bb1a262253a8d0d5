"""One digest run: claim → collect → summarize → render → deliver → record.

`run_digest` is what the task of that name does; `build` is its first half, which `digests
preview` and digests asked for in Slack also use. Failures that may pass (`RetryableError`) are
raised for the task to retry; everything done so far is in the ledger, so the retry resumes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import redis
from slack_sdk import WebClient

from jobs.config import Settings
from jobs.digest import unsubscribe
from jobs.digest.collect import Checkpoint, Collector
from jobs.digest.deliver import SENT, UNSUBSCRIBED, post, send_mail
from jobs.digest.ledger import Duplicate, Ledger, RunRecord, previous_totals
from jobs.digest.model import SECTIONS, Digest, Stats, Window
from jobs.digest.render.blocks import slack_messages
from jobs.digest.render.email import email_message
from jobs.digest.summarize import summarize, with_permalinks
from jobs.errors import PermanentError, TokenRevoked
from jobs.queue import Run
from jobs.scheduling.slots import Schedule
from jobs.slack.directory import Directory, permalink
from jobs.slack.revocation import ensure_not_revoked

Progress = Callable[..., None]


@dataclass(frozen=True)
class Scope:
    """What one digest covers and what heads it: a schedule's window, or a channel asked for."""

    title: str  # "eng-weekly digest"
    channels: tuple[str, ...]  # IDs or #names
    window: Window
    sections: tuple[str, ...] = SECTIONS
    previous: Stats | None = None  # the figures the change is counted against


def scheduled(cache: redis.Redis, schedule: Schedule, slot: datetime) -> Scope:
    """A schedule's digest of the window that ends at `slot`, against its last scheduled run."""
    return Scope(
        f"{schedule.name} digest",
        schedule.channels,
        schedule.window_for(slot),
        schedule.sections,
        previous_totals(cache, schedule.name),
    )


@dataclass(frozen=True)
class Built:
    digest: Digest
    names: dict[str, str]  # user and channel IDs to names, for rendering


def build(
    client: WebClient,
    cache: redis.Redis,
    scope: Scope,
    *,
    checkpoint: Checkpoint | None = None,
    save: Callable[[Checkpoint], None] = lambda state: None,
    progress: Progress = lambda **counts: None,
) -> Built:
    """Collect and summarize the scope's channels over its window."""
    directory = Directory(client, cache)
    channels = [directory.channel_id(ref) for ref in scope.channels]
    channel_names = directory.channel_names(channels)
    collector = Collector(
        client,
        scope.window,
        checkpoint,
        save,
        lambda messages: progress(stage="collect", messages=messages),
    )
    tallies = [collector.channel(channel, channel_names[channel]) for channel in channels]
    save(collector.state)  # a retry of a later stage does not collect again
    progress(stage="summarize", messages=collector.messages)
    digest = summarize(
        scope.title, scope.window, tallies, previous=scope.previous, sections=scope.sections
    )
    base = directory.permalink_base()
    digest = with_permalinks(
        digest, {(p.channel, p.ts): permalink(base, p.channel, p.ts) for p in digest.posts()}
    )
    people = {user for c in digest.channels for user, _ in c.people}
    people |= {p.user for p in digest.posts()}
    people |= {user for c in digest.channels for user in (*c.joined, *c.left)}
    names = {**directory.user_names(people), **channel_names}
    return Built(digest, names)


def run_digest(
    settings: Settings,
    client: WebClient,
    cache: redis.Redis,
    schedule: Schedule,
    run: Run,
    task_id: str,
    progress: Progress,
) -> RunRecord | Duplicate:
    """Run the schedule's slot once, whoever else asks for it; returns the run's record."""
    ledger = Ledger(cache, run.id)
    claim = ledger.claim(task_id)
    if not claim.ours:
        return Duplicate(run.id, claim.owner)
    finished = ledger.record()
    if finished is not None:  # redelivered after it had finished: nothing left to do
        return finished
    started = time.time()
    timings: dict[str, float] = {}
    try:
        built = build(
            client,
            cache,
            scheduled(cache, schedule, run.slot),
            checkpoint=ledger.checkpoint(),
            save=ledger.save_checkpoint,
            progress=progress,
        )
    except PermanentError as error:
        return finish(ledger, run, "failed", started, error=str(error))
    timings["collect"] = round(time.time() - started, 3)
    digest = built.digest
    if schedule.skip_if_quiet and digest.quiet:
        return finish(ledger, run, "skipped", started, digest=digest, reason="quiet window")
    progress(stage="deliver", messages=digest.totals.messages)
    outcomes = deliver_everywhere(settings, client, cache, schedule, built, ledger, claim.started)
    timings["deliver"] = round(time.time() - started - timings["collect"], 3)
    failed = [dest for dest, outcome in outcomes.items() if not is_success(outcome)]
    status = (
        "delivered" if not failed else ("failed" if len(failed) == len(outcomes) else "partial")
    )
    return finish(
        ledger, run, status, started, digest=digest, destinations=outcomes, timings=timings
    )


def is_success(outcome: str) -> bool:
    return outcome in (SENT, UNSUBSCRIBED) or outcome.startswith("posted")


def deliver_everywhere(
    settings: Settings,
    client: WebClient,
    cache: redis.Redis,
    schedule: Schedule,
    built: Built,
    ledger: Ledger,
    since: float,
) -> dict[str, str]:
    """Each destination's outcome: `posted <ts>`, `sent`, or `failed: <why>`."""
    outcomes: dict[str, str] = {}
    if schedule.slack:
        parts = slack_messages(built.digest, built.names)
        directory = Directory(client, cache)
        try:
            ensure_not_revoked(cache, settings.slack_bot_token or "")
        except TokenRevoked as error:
            outcomes.update({f"slack:{ref}": f"failed: {error}" for ref in schedule.slack})
        for ref in (ref for ref in schedule.slack if f"slack:{ref}" not in outcomes):
            try:
                ts = post(client, directory.channel_id(ref), parts, ledger.run, ledger, since)
            except PermanentError as error:
                outcomes[f"slack:{ref}"] = f"failed: {error}"
            else:
                outcomes[f"slack:{ref}"] = f"posted {ts}"
    if schedule.email:
        gone = unsubscribe.unsubscribed(cache, schedule.name)
        outcomes.update(
            {f"email:{r}": UNSUBSCRIBED for r in schedule.email if unsubscribe.address(r) in gone}
        )
        render = partial(
            email_message,
            built.digest,
            built.names,
            schedule=schedule.name,
            sender=settings.email_from or "",
            run_id=ledger.run,
            public_url=settings.public_url,
            link_key=unsubscribe.link_key(cache),
            now=datetime.now().astimezone(),
        )
        owed = [r for r in schedule.email if f"email:{r}" not in outcomes]
        mail = send_mail(settings, owed, lambda r: render(recipient=r), ledger)
        outcomes.update({f"email:{r}": outcome for r, outcome in mail.items()})
    return outcomes


def give_up(cache: redis.Redis, run: Run, error: str) -> RunRecord:
    """Record the run as failed after its retries ran out or its time did."""
    return finish(Ledger(cache, run.id), run, "failed", time.time(), error=error)


def finish(
    ledger: Ledger,
    run: Run,
    status: str,
    started: float,
    *,
    digest: Digest | None = None,
    **details: Any,
) -> RunRecord:
    """Write the run's record to the ledger and the schedule's history, and return it."""
    record = RunRecord(
        run=run.id,
        schedule=run.schedule,
        slot=run.slot.isoformat(),
        manual=run.manual,
        status=status,
        started=started,
        finished=time.time(),
        window=None if digest is None else digest.window.bounds(),
        totals=None if digest is None else digest.totals.as_dict(),
        **details,
    )
    ledger.finish(record)
    return record
