"""One digest run: claim → collect → summarize → render → deliver → record.

`run` is what the `run_digest` task does; `build` is its first half, which `digests preview`
also uses. Failures that may pass (`RateLimited`, `SlackUnavailable`, `MailDeferred`) are
raised for the task to retry; everything done so far is in the ledger, so the retry resumes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import redis
from slack_sdk import WebClient

from jobs import unsubscribe
from jobs.config import Settings
from jobs.digest.collect import Checkpoint, Collector
from jobs.digest.deliver import SENT, UNSUBSCRIBED, post, send_mail
from jobs.digest.directory import Directory, permalink
from jobs.digest.email import email_message
from jobs.digest.model import Digest
from jobs.digest.render import slack_messages
from jobs.digest.slack import DigestFailed
from jobs.digest.summarize import summarize, with_permalinks
from jobs.revocation import TokenRevoked, ensure_not_revoked
from jobs.runs import Ledger, previous_totals, run_id
from jobs.schedules import Schedule

Progress = Callable[..., None]


@dataclass(frozen=True)
class Built:
    digest: Digest
    names: dict[str, str]  # user and channel IDs to names, for rendering


def build(
    client: WebClient,
    cache: redis.Redis,
    schedule: Schedule,
    slot: datetime,
    *,
    checkpoint: Checkpoint | None = None,
    save: Callable[[Checkpoint], None] = lambda state: None,
    progress: Progress = lambda **counts: None,
) -> Built:
    """Collect and summarize the schedule's channels over the window that ends at `slot`."""
    directory = Directory(client, cache)
    window = schedule.window_for(slot)
    channels = [directory.channel_id(ref) for ref in schedule.channels]
    channel_names = directory.channel_names(channels)
    collector = Collector(
        client,
        window,
        checkpoint,
        save,
        lambda messages: progress(stage="collect", messages=messages),
    )
    tallies = [collector.channel(channel, channel_names[channel]) for channel in channels]
    save(collector.state)  # a retry of a later stage does not collect again
    progress(stage="summarize", messages=collector.messages)
    digest = summarize(
        schedule.name,
        window,
        tallies,
        previous=previous_totals(cache, schedule.name),
        sections=schedule.sections,
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


def run(
    settings: Settings,
    client: WebClient,
    cache: redis.Redis,
    schedule: Schedule,
    slot: datetime,
    task_id: str,
    progress: Progress,
) -> dict[str, Any]:
    """Run the schedule's slot once, whoever else asks for it; returns the run's record."""
    name = run_id(schedule.name, slot)
    ledger = Ledger(cache, name)
    claim = ledger.claim(task_id)
    if not claim.ours:
        return {"run": name, "status": "duplicate", "owner": claim.owner}
    finished = ledger.record()
    if finished is not None:  # redelivered after it had finished: nothing left to do
        return finished
    started = time.time()
    timings: dict[str, float] = {}
    try:
        built = build(
            client,
            cache,
            schedule,
            slot,
            checkpoint=ledger.checkpoint(),
            save=ledger.save_checkpoint,
            progress=progress,
        )
    except DigestFailed as error:
        return finish(ledger, schedule, slot, "failed", started, error=str(error))
    timings["collect"] = round(time.time() - started, 3)
    digest = built.digest
    if schedule.skip_if_quiet and digest.quiet:
        return finish(
            ledger, schedule, slot, "skipped", started, digest=digest, reason="quiet window"
        )
    progress(stage="deliver", messages=digest.totals.messages)
    outcomes = deliver(settings, client, cache, schedule, built, ledger, claim.started)
    timings["deliver"] = round(time.time() - started - timings["collect"], 3)
    failed = [dest for dest, outcome in outcomes.items() if not is_success(outcome)]
    status = (
        "delivered" if not failed else ("failed" if len(failed) == len(outcomes) else "partial")
    )
    return finish(
        ledger,
        schedule,
        slot,
        status,
        started,
        digest=digest,
        destinations=outcomes,
        timings=timings,
    )


def is_success(outcome: str) -> bool:
    return outcome in (SENT, UNSUBSCRIBED) or outcome.startswith("posted")


def deliver(
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
            except DigestFailed as error:
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


def give_up(cache: redis.Redis, schedule: Schedule, slot: datetime, error: str) -> dict[str, Any]:
    """Record the run as failed after its retries ran out or its time did."""
    ledger = Ledger(cache, run_id(schedule.name, slot))
    return finish(ledger, schedule, slot, "failed", time.time(), error=error)


def finish(
    ledger: Ledger,
    schedule: Schedule,
    slot: datetime,
    status: str,
    started: float,
    *,
    digest: Digest | None = None,
    **details: Any,
) -> dict[str, Any]:
    """Write the run's record to the ledger and the schedule's history, and return it."""
    record: dict[str, Any] = {
        "run": ledger.run,
        "schedule": schedule.name,
        "slot": slot.isoformat(),
        # In UTC: a same-zone comparison ignores `fold`, so a repeated hour would look equal.
        "manual": slot.astimezone(UTC) != schedule.latest_slot(slot).astimezone(UTC),
        "status": status,
        "started": started,
        "finished": time.time(),
        **details,
    }
    if digest is not None:
        record["window"] = [digest.window.start.isoformat(), digest.window.end.isoformat()]
        record["totals"] = digest.totals.as_dict()
    ledger.finish(schedule.name, record)
    return record
