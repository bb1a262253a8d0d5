"""One digest run: claim → collect → summarize → render → deliver → record.

`run_digest` is what the task of that name does; `build` is its first half, which `digests
preview` and digests asked for in Slack also use. Failures that may pass (`RetryableError`) are
raised for the task to retry; everything done so far is in the ledger, so the retry resumes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

import redis
from slack_sdk import WebClient

from jobs.config import Settings
from jobs.digest import llm, topics, unsubscribe
from jobs.digest.collect import Checkpoint, Collector
from jobs.digest.deliver import SENT, UNSUBSCRIBED, post, send_mail
from jobs.digest.ledger import Duplicate, Ledger, RunRecord, previous_run, totals_of
from jobs.digest.model import SECTIONS, Digest, Stats, Window
from jobs.digest.render.blocks import slack_messages
from jobs.digest.render.email import email_message
from jobs.digest.summarize import summarize, with_permalinks
from jobs.errors import LLMFailed, PermanentError, TokenRevoked
from jobs.queue import Run
from jobs.scheduling import pause
from jobs.scheduling.slots import Schedule
from jobs.slack.api import CallCounts, Client
from jobs.slack.directory import Directory, permalink
from jobs.slack.mrkdwn import plain
from jobs.slack.revocation import ensure_not_revoked
from jobs.slack.sharing import SharedPages

Progress = Callable[..., None]


@dataclass(frozen=True)
class Scope:
    """What one digest covers and what heads it: a schedule's window, or a channel asked for."""

    title: str  # "Engineering weekly"
    channels: tuple[str, ...]  # IDs or #names
    window: Window
    sections: tuple[str, ...] = SECTIONS
    previous: Stats | None = None  # the figures the change is counted against
    terms: dict[str, dict[str, int]] | None = None  # the previous run's, for rising topics
    summarizer: str = "extractive"
    # Channels other runs read over a window with the same end: their pages are kept for them.
    shared: frozenset[str] = frozenset()


def scheduled(cache: redis.Redis, schedule: Schedule, slot: datetime) -> Scope:
    """A schedule's digest of the window that ends at `slot`, against its last scheduled run."""
    before = previous_run(cache, schedule.name)
    return Scope(
        schedule.title,
        schedule.channels,
        schedule.window_for(slot),
        schedule.sections,
        totals_of(before),
        None if before is None else before.terms,
        schedule.summarizer,
    )


@dataclass(frozen=True)
class Built:
    digest: Digest
    names: dict[str, str]  # user and channel IDs to names, for rendering
    summarizer: str = "extractive"  # "llm", or why the LLM's summary is not there


def build(
    client: WebClient,
    cache: redis.Redis,
    scope: Scope,
    *,
    checkpoint: Checkpoint | None = None,
    save: Callable[[Checkpoint], None] = lambda state: None,
    progress: Progress = lambda **counts: None,
    settings: Settings | None = None,
    owner: str = "",
) -> Built:
    """Collect and summarize the scope's channels over its window; with `summarizer: llm`,
    `settings` say which LLM writes the summary on top. `owner` (a run) holds the leases of the
    pages it fetches for others."""
    if "topics" in scope.sections:
        topics.preload()
    directory = Directory(client, cache)
    channels = [directory.channel_id(ref) for ref in scope.channels]
    channel_names = directory.channel_names(channels)
    shared = {c for c in channels if c in scope.shared or channel_names[c] in scope.shared}
    collector = Collector(
        SharedPages(client, cache, owner or uuid.uuid4().hex, shared),
        scope.window,
        checkpoint,
        save,
        lambda messages: progress(stage="collect", messages=messages),
        transcript=scope.summarizer == "llm",
    )
    tallies = [collector.channel(channel, channel_names[channel]) for channel in channels]
    save(collector.state)  # a retry of a later stage does not collect again
    progress(stage="summarize", messages=collector.messages)
    digest = summarize(
        scope.title,
        scope.window,
        tallies,
        previous=scope.previous,
        terms=scope.terms,
        sections=scope.sections,
    )
    base = directory.permalink_base()
    digest = with_permalinks(digest, lambda p: permalink(base, p.channel, p.ts, p.thread))
    names = {**directory.user_names(digest.people()), **channel_names}
    if scope.summarizer != "llm":
        return Built(digest, names)
    lines = sorted(line for tally in tallies for line in tally.lines())
    names.update(directory.user_names({user for _, user, _ in lines} - names.keys()))
    text, how = generate(settings, scope.title, lines, names)
    return Built(replace(digest, generated=text), names, how)


def kept_terms(digest: Digest) -> dict[str, dict[str, int]] | None:
    """Each channel's term counts, for the next run's topics; None when topics were not shown."""
    terms = {c.channel: c.terms for c in digest.channels if c.terms is not None}
    return terms or None


def generate(
    settings: Settings | None,
    title: str,
    lines: list[tuple[str, str, str]],
    names: dict[str, str],
) -> tuple[str | None, str]:
    """The LLM's summary of the transcript's `(ts, user, text)` lines and how the summary was
    made; any failure leaves the extractive digest, and says why (never the text)."""
    if settings is None or not settings.llm_api_url:
        return None, "extractive (summarizer: llm, but LLM_API_URL is not set)"
    if not lines:
        return None, "extractive (no messages for the LLM to summarize)"
    said = [llm.Line(names.get(user) or "someone", plain(text, names)) for _, user, text in lines]
    try:
        answer = llm.summarize(
            settings.llm_api_url,
            settings.llm_api_key,
            settings.llm_model,
            llm.prompt(title, said),
            settings.llm_timeout,
        )
    except LLMFailed as error:
        return None, f"extractive (llm failed: {error})"
    return answer, "llm"


def run_digest(
    settings: Settings,
    client: WebClient,
    cache: redis.Redis,
    schedule: Schedule,
    run: Run,
    task_id: str,
    progress: Progress,
    *,
    alongside: frozenset[str] = frozenset(),
) -> RunRecord | Duplicate:
    """Run the schedule's slot once, whoever else asks for it; returns the run's record. Every
    Slack call the try made is added to the run's count, however the try ends. `alongside`
    are the channels other runs read over the same window end (`slots.read_alongside`)."""
    ledger = Ledger(cache, run.id)
    counts = client.counts if isinstance(client, Client) else CallCounts()
    try:
        done = attempt(settings, client, cache, schedule, run, ledger, task_id, progress, alongside)
    except BaseException:
        with suppress(redis.RedisError):  # the failure that stopped the try matters more
            ledger.add_calls(counts)
        raise
    ledger.add_calls(counts)
    if isinstance(done, Duplicate | RunRecord):
        return done
    status, details = done
    return finish(ledger, run, status, details.pop("started"), **details)


def attempt(
    settings: Settings,
    client: WebClient,
    cache: redis.Redis,
    schedule: Schedule,
    run: Run,
    ledger: Ledger,
    task_id: str,
    progress: Progress,
    alongside: frozenset[str],
) -> RunRecord | Duplicate | tuple[str, dict[str, Any]]:
    """One try of the run: nothing when another task owns it, the record when it had already
    finished, else how it ended and what its record says."""
    claim = ledger.claim(task_id)
    if not claim.ours:
        return Duplicate(run.id, claim.owner)
    finished = ledger.record()
    if finished is not None:  # redelivered after it had finished: nothing left to do
        return finished
    started = time.time()
    if not run.manual and pause.paused(cache, schedule.name, datetime.now(UTC)):
        return "skipped", {"started": started, "reason": "paused"}  # asked for: it runs
    timings: dict[str, float] = {}
    try:
        built = build(
            client,
            cache,
            replace(scheduled(cache, schedule, run.slot), shared=alongside),
            checkpoint=ledger.checkpoint(),
            save=ledger.save_checkpoint,
            progress=progress,
            settings=settings,
            owner=run.id,
        )
    except PermanentError as error:
        return "failed", {"started": started, "error": str(error)}
    timings["collect"] = round(time.time() - started, 3)
    digest = built.digest
    if schedule.skip_if_quiet and digest.quiet:
        return "skipped", {"started": started, "digest": digest, "reason": "quiet window"}
    progress(stage="deliver", messages=digest.totals.messages)
    outcomes = deliver_everywhere(settings, client, cache, schedule, built, ledger, claim.started)
    timings["deliver"] = round(time.time() - started - timings["collect"], 3)
    failed = [dest for dest, outcome in outcomes.items() if not is_success(outcome)]
    status = (
        "delivered" if not failed else ("failed" if len(failed) == len(outcomes) else "partial")
    )
    return status, {
        "started": started,
        "digest": digest,
        "destinations": outcomes,
        "timings": timings,
        "summarizer": built.summarizer,
    }


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
    calls, limited, capped = ledger.calls()
    now = time.time()
    record = RunRecord(
        run=run.id,
        schedule=run.schedule,
        slot=run.slot.isoformat(),
        manual=run.manual,
        by=run.by or None,
        status=status,
        started=started,
        finished=now,
        lateness=round(now - run.slot.timestamp(), 3),
        calls=calls or None,
        rate_limited=limited or None,
        capped=capped or None,
        window=None if digest is None else digest.window.bounds(),
        totals=None if digest is None else digest.totals.as_dict(),
        terms=None if digest is None else kept_terms(digest),
        **details,
    )
    ledger.finish(record)
    return record
