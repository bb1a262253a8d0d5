"""Names of the Redis keys the service owns: one prefix, one place."""

from __future__ import annotations

PREFIX = "digests:"

# Slack retries an event for about 6 minutes; an hour covers that with room to spare.
EVENT_DEDUPE_TTL = 3600
# How long `GET /tasks/{id}` knows an id: as long as the result backend keeps results.
TASK_RECORD_TTL = 86400


# A click counts once within this many seconds: a double click, or an impatient second one.
CLICK_DEDUPE_TTL = 10


def interaction(identity: str) -> str:
    """The dedupe claim of one click (who, which button of which schedule, where)."""
    return f"{PREFIX}interaction:{identity}"


def event(event_id: str) -> str:
    """The dedupe claim of one Slack `event_id`; its value is the task id it became."""
    return f"{PREFIX}event:{event_id}"


def task(task_id: str) -> str:
    """The record that we issued this task id, so unknown ids can answer 404: its message until
    the task is done, for the journal to push again; then `done`, so a copy does nothing."""
    return f"{PREFIX}task:{task_id}"


def task_result(task_id: str) -> str:
    """Where Celery's Redis result backend keeps a task's state (its own name, not ours)."""
    return f"celery-task-meta-{task_id}"


# Every queued task until it is done: a sorted set of task ids by when each is next checked, to
# push its message (kept in its task record) again when nobody holds it (`jobs.inflight`).
INFLIGHT = f"{PREFIX}inflight"
INFLIGHT_REQUEUES = f"{PREFIX}inflight:requeues"  # how often each was pushed again


def lease(task_id: str) -> str:
    """Held, with a short TTL, by the worker process running the task."""
    return f"{PREFIX}lease:{task_id}"


def stopping(worker: str) -> str:
    """Set while the worker with this node name shuts down, for its tasks to hand work back."""
    return f"{PREFIX}stopping:{worker}"


def revoked(token_fingerprint: str) -> str:
    """Set when Slack revoked the bot token with this fingerprint; a new token is unaffected."""
    return f"{PREFIX}revoked:{token_fingerprint}"


# A slot's claim and its run's state outlive any retry, trigger or catch-up for that slot.
RUN_TTL = 30 * 86400
# Names of channels and people change rarely; an hour keeps Slack calls few and names fresh.
DIRECTORY_TTL = 3600
# Runs kept per schedule, newest first.
HISTORY_LENGTH = 200


def claim(run_id: str) -> str:
    """Who owns a run: the id of the task that claimed it with SET NX."""
    return f"{PREFIX}claim:{run_id}"


def run(run_id: str) -> str:
    """A run's progress: its collect checkpoint and each destination's delivery."""
    return f"{PREFIX}run:{run_id}"


def history(schedule: str) -> str:
    """The schedule's finished runs, newest first, capped at `HISTORY_LENGTH`."""
    return f"{PREFIX}history:{schedule}"


def directory(team: str, kind: str, name: str) -> str:
    """A cached Slack name in workspace `team`: of a `channels` ID or `#name` (both ways), or
    `users`; one workspace's `#eng` is not another's."""
    return f"{PREFIX}directory:{team}:{kind}:{name}"


def enqueued(run_id: str) -> str:
    """The task queued for a run, so that beat and triggers asking for one slot queue one task."""
    return f"{PREFIX}enqueued:{run_id}"


# Beat's state: what must survive restarts has no TTL (a schedule's last slot, skipped slots).
BEAT_LEADER = f"{PREFIX}beat:leader"
SKIPPED_LENGTH = 20
# A hash: per schedule, the "cron zone" its last slot was counted in; a change starts it afresh.
BEAT_CRONS = f"{PREFIX}beat:crons"
# The schedules file's errors while beat runs the last good version: JSON {errors, since}.
BEAT_ERRORS = f"{PREFIX}beat:errors"


def last_slot(schedule: str) -> str:
    """The newest slot beat dealt with (ISO-8601 with offset): enqueued or skipped, or for a
    schedule new to beat (or whose cron changed) the slot before it started counting."""
    return f"{PREFIX}beat:last:{schedule}"


def skipped(schedule: str) -> str:
    """Slots missed by more than `catchup`, newest first, capped at `SKIPPED_LENGTH`."""
    return f"{PREFIX}beat:skipped:{schedule}"


# Pause is operational state (no TTL but its `until`); the action log is capped, not expired.
ACTIONS_LENGTH = 200


def paused(schedule: str) -> str:
    """The schedule's pause, JSON {who, when, until, reason}; it expires at `until`."""
    return f"{PREFIX}paused:{schedule}"


def actions(schedule: str) -> str:
    """What people did to the schedule (pause, resume, …), newest first, capped."""
    return f"{PREFIX}actions:{schedule}"


def idempotency(schedule: str, key: str) -> str:
    """The task of a manual run asked for with this `Idempotency-Key`."""
    return f"{PREFIX}idempotency:{schedule}:{key}"


# Unsubscribing has no TTL: a person who asked not to get a schedule's mail must not get it again.
# The key that signs unsubscribe links, made by the first worker that mails (32 random bytes).
UNSUBSCRIBE_KEY = f"{PREFIX}unsubscribe:key"


def unsubscribed(schedule: str) -> str:
    """A set: the addresses (lower case) that unsubscribed from the schedule's mail."""
    return f"{PREFIX}unsubscribed:{schedule}"


# A burst's shared Slack state lives minutes: a back-off as long as Slack asked, pages as long as
# runs keep reading them.
PAGE_TTL = 300


def pace(token_fingerprint: str, method: str) -> str:
    """Until when (epoch seconds) every worker on the token backs off `method`: Slack's
    `Retry-After`."""
    return f"{PREFIX}pace:{token_fingerprint}:{method}"


def pace_turn(token_fingerprint: str, method: str) -> str:
    """Who calls `method` now, while calls after a back-off go one at a time."""
    return f"{PREFIX}pace-turn:{token_fingerprint}:{method}"


def page(token_fingerprint: str, request: str) -> str:
    """A page of channel history or thread replies, shared by the runs that read it; `request`
    is a digest of the method and its arguments."""
    return f"{PREFIX}page:{token_fingerprint}:{request}"


def page_lease(token_fingerprint: str, request: str) -> str:
    """Held by the run fetching the page, so the others wait for it instead of asking Slack."""
    return f"{PREFIX}page-lease:{token_fingerprint}:{request}"
