"""Whole digest runs: a real worker, the Slack simulator over HTTP, real SMTP into the sink."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from jobs.config import Settings
from jobs.digest.ledger import Ledger
from jobs.queue import Run, enqueue, run_job
from jobs.scheduling.file import load
from sandbox.llm import Faults, LLMStub
from sandbox.slack import SlackSimulator
from sandbox.smtp_sink import SmtpSink
from sandbox.workspace import Workspace, generate
from tests.conftest import ROOT, Child, Worker, environment, wait_until
from tests.http_sink import HttpSink
from tests.signed import command_form, event_callback, signed_form, signed_json
from webhook.app import create_app

HUMAN_SUBTYPES = (None, "thread_broadcast", "file_share", "me_message")
RECIPIENTS = ("ana@example.com", "ben@example.com", "cy@example.com")
PUBLIC_URL = "https://digests.example.com/"
LLM_KEY = "sk-never-shown-0123456789"
SCHEDULES = """
version: 1
defaults: {skip_if_quiet: false, window: 7d}
schedules:
"""


@dataclass
class Stack:
    redis_url: str
    slack: SlackSimulator
    mail: SmtpSink
    worker: Worker
    env: dict[str, str]
    schedules: Path
    llm: LLMStub

    def schedule(self, name: str, channels: list[str], **fields: Any) -> str:
        """Add a schedule to the file the worker reads; returns its name."""
        entry = {
            "name": name,
            "cron": "0 9 * * MON",
            "channels": channels,
            "deliver": {"slack": ["#eng-digest"], "email": list(RECIPIENTS)},
            **fields,
        }
        with self.schedules.open("a") as out:
            out.write(f"  - {json.dumps(entry)}\n")
        return name

    def run(self, name: str, *options: str) -> subprocess.CompletedProcess[str]:
        """`digests run NAME --json`, as a script would call it."""
        command = [sys.executable, "-m", "jobs", "run", name, "--json", *options]
        return subprocess.run(command, cwd=ROOT, env=self.env, capture_output=True, text=True)

    def run_then_clear_faults(self, name: str) -> subprocess.CompletedProcess[str]:
        """`digests run NAME` under the faults set on the simulator, which succeeded."""
        try:
            done = self.run(name)
        finally:
            self.slack.clear_faults()
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    def posts_for(self, run: str) -> list[dict[str, Any]]:
        return [p for p in self.slack.posted if run_of(p) == run]

    def mails_for(self, name: str, since: int = 0) -> dict[str, list[EmailMessage]]:
        """Each recipient's mails of the schedule `name` (its subject names it)."""
        found: dict[str, list[EmailMessage]] = {}
        for mail in self.mail.received[since:]:
            if str(mail.message["Subject"]).split(":")[0].split()[0] == name:
                found.setdefault(mail.recipients[0], []).append(mail.message)
        return found


def run_of(post: dict[str, Any]) -> str | None:
    """The run a post names in its metadata; None for posts that are not a digest's."""
    payload: dict[str, Any] = (post.get("metadata") or {}).get("event_payload") or {}
    return payload.get("run")


def record_of(output: str) -> dict[str, Any]:
    """The run's record, all that `digests run --json` prints on stdout."""
    record: dict[str, Any] = json.loads(output)
    return record


@pytest.fixture(scope="module")
def workspace() -> Workspace:
    now = datetime.now(UTC)
    return generate(
        seed=7, messages=1500, start=now - timedelta(days=6), end=now - timedelta(hours=1)
    )


@pytest.fixture(scope="module")
def stack(
    redis_url: str, workspace: Workspace, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    # A database of its own, so the session's other worker never takes these tasks.
    url = redis_url.rsplit("/", 1)[0] + "/3"
    schedules = tmp_path_factory.mktemp("digests") / "schedules.yaml"
    schedules.write_text(SCHEDULES)
    with SlackSimulator(workspace) as slack, SmtpSink() as mail, LLMStub() as llm:
        env = {
            **os.environ,
            **environment(url),
            "SLACK_API_URL": slack.url,
            "SLACK_BOT_TOKEN": slack.token,
            "SMTP_URL": mail.url(),
            "EMAIL_FROM": "Digests <digests@example.com>",
            "SCHEDULES_FILE": str(schedules),
            "PUBLIC_URL": PUBLIC_URL,
            "LLM_API_URL": llm.url,
            "LLM_API_KEY": LLM_KEY,
            "LLM_TIMEOUT": "2",
        }
        overrides = {
            k: env[k]
            for k in (
                "SLACK_API_URL",
                "SLACK_BOT_TOKEN",
                "SMTP_URL",
                "EMAIL_FROM",
                "SCHEDULES_FILE",
                "PUBLIC_URL",
                "LLM_API_URL",
                "LLM_API_KEY",
                "LLM_TIMEOUT",
            )
        }
        worker = Worker(url, overrides).start()
        stack = Stack(url, slack, mail, worker, env, schedules, llm)
        try:
            yield stack
        finally:
            stack.worker.stop()  # the one running now: a test may have replaced it


def human(message: dict[str, Any]) -> bool:
    return "bot_id" not in message and message.get("subtype") in HUMAN_SUBTYPES


def true_totals(workspace: Workspace, names: list[str]) -> dict[str, int]:
    """The window's figures, counted here from the generated workspace, not by the product."""
    ids = [c["id"] for c in workspace.channels if c["name"] in names]
    messages = [m for channel in ids for m in workspace.messages[channel] if human(m)]
    return {
        "messages": len(messages),
        "threads": sum(1 for m in messages if m.get("reply_count")),
        "people": len({m["user"] for m in messages}),
        "reactions": sum(r["count"] for m in messages for r in m.get("reactions", [])),
        "files": sum(len(m.get("files", [])) for m in messages),
    }


def test_a_digest_lands_in_slack_and_the_inbox_with_the_true_figures(
    stack: Stack, workspace: Workspace
) -> None:
    name = stack.schedule("eng-and-general", ["#eng", "#general"])
    done = stack.run(name)
    assert done.returncode == 0, done.stdout + done.stderr
    record = record_of(done.stdout)
    assert record["status"] == "delivered"
    expected = true_totals(workspace, ["eng", "general"])
    assert {k: record["totals"][k] for k in expected} == expected

    posts = stack.posts_for(record["run"])
    assert posts and posts[0]["channel_id"] == stack.slack.channel_id("eng-digest")
    assert all(p.get("thread_ts") == posts[0]["ts"] for p in posts[1:])
    shown = json.dumps([p["blocks"] for p in posts], ensure_ascii=False)
    assert f"{expected['messages']:,}" in shown
    assert "<!channel>" not in shown and "evil.example|" not in shown
    # A short summary post, then one reply per channel, every section of the demo's stories.
    summary = json.dumps(posts[0]["blocks"], ensure_ascii=False)
    assert len(posts[0]["blocks"]) <= 15
    for title in ("*Highlights*", "*Decisions*", "*Action items*", "*Channels*", "*Activity*"):
        assert title in summary
    assert "we'll go with Postgres for the exports migration" in summary
    assert "fixed, results are fresh again" in summary  # a highlight's outcome
    assert len(posts) == 3 and "#eng" in posts[1]["text"] and "#general" in posts[2]["text"]
    for title in ("*Topics*", "*Links and files*", "☑", "☐", "exports migration"):
        assert title in shown
    assert "?thread_ts=" in shown  # a reply's permalink opens its thread

    mails = stack.mails_for(name)
    assert sorted(mails) == sorted(RECIPIENTS)
    assert all(len(sent) == 1 for sent in mails.values())
    message = mails["ana@example.com"][0]
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    assert text is not None and f"{expected['messages']:,}" in text.get_content()
    assert record["destinations"] == {
        "slack:#eng-digest": f"posted {posts[0]['ts']}",
        **{f"email:{r}": "sent" for r in RECIPIENTS},
    }
    # The run's one log line: schedule, slot, outcome and counts, never message text.
    line = f"run {record['run']}: delivered messages={expected['messages']} "
    stack.worker.wait_for(line)
    logged = stack.worker.log()
    assert stack.slack.token not in logged and "<!channel>" not in logged


def test_an_llm_summary_heads_the_digest_marked_and_without_secrets(stack: Stack) -> None:
    name = stack.schedule("with-llm", ["#eng"], summarizer="llm", title="Eng, summarized")
    asked = len(stack.llm.received)
    done = stack.run(name)
    assert done.returncode == 0, done.stdout + done.stderr
    record = record_of(done.stdout)
    assert record["status"] == "delivered" and record["summarizer"] == "llm"
    summary = json.dumps(stack.posts_for(record["run"])[0]["blocks"], ensure_ascii=False)
    assert "Eng, summarized" in summary
    assert "_(generated by a language model)_" in summary
    assert summary.index("generated by a language model") < summary.index("*Highlights*")
    assert "Open: the billing runbook and the rollback plan." in summary
    [mail] = [
        m.message
        for m in stack.mail.received
        if m.message["Subject"].startswith("Eng, summarized")
        and m.recipients == ("ana@example.com",)
    ]
    text = mail.get_body(("plain",))
    assert text is not None and "Summary (generated by a language model)" in text.get_content()
    # One request: a chat completion of names and text, never user IDs or addresses.
    [request] = stack.llm.received[asked:]
    assert request.headers["authorization"] == f"Bearer {LLM_KEY}"
    content = request.body["messages"][-1]["content"]
    assert "Messages:\n" in content and len(content) <= 30_000
    assert not re.search(r"<@|\bU[A-Z0-9]{8,}\b|\S+@\S+\.\w+", content)
    stack.worker.wait_for(f"run {record['run']}: delivered")
    log = stack.worker.log()
    assert LLM_KEY not in log and "billing runbook" not in log


@pytest.mark.parametrize(
    ("fault", "why"),
    [
        (Faults(status=500), "LLM endpoint answered 500"),
        (Faults(delay=5), "LLM endpoint timed out after 2s"),
        (Faults(malformed=True), "LLM answer was not a chat completion"),
    ],
)
def test_an_llm_that_fails_leaves_the_extractive_digest_and_says_why(
    stack: Stack, fault: Faults, why: str
) -> None:
    name = stack.schedule(f"llm-{len(stack.llm.received)}", ["#eng"], summarizer="llm")
    stack.llm.faults = fault
    try:
        done = stack.run(name)
    finally:
        stack.llm.faults = Faults()
    assert done.returncode == 0, done.stdout + done.stderr
    record = record_of(done.stdout)
    assert record["status"] == "delivered"
    assert record["summarizer"] == f"extractive (llm failed: {why})"
    summary = json.dumps(stack.posts_for(record["run"])[0]["blocks"], ensure_ascii=False)
    assert "generated by a language model" not in summary and "*Highlights*" in summary


def test_without_summarizer_llm_nothing_is_sent_to_the_llm(stack: Stack) -> None:
    name = stack.schedule("no-llm", ["#eng"], deliver={"slack": ["#eng-digest"]})
    asked = len(stack.llm.received)
    done = stack.run(name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert record_of(done.stdout)["summarizer"] == "extractive"
    assert len(stack.llm.received) == asked


def test_a_permanent_error_fails_at_once_with_what_to_do(stack: Stack) -> None:
    name = stack.schedule("design", ["#design"])
    done = stack.run(name)
    assert done.returncode == 1
    record = record_of(done.stdout)
    assert record["status"] == "failed"
    assert "invite" in record["error"] and "#design" in record["error"]


def test_a_429_storm_is_waited_out_in_place_and_counted(stack: Stack, workspace: Workspace) -> None:
    name = stack.schedule("storm", ["#support"])
    stack.slack.calls.clear()
    stack.slack.rate_limit("conversations.history", every=2, retry_after=1)
    done = stack.run_then_clear_faults(name)
    record = record_of(done.stdout)
    assert record["totals"]["messages"] == true_totals(workspace, ["support"])["messages"]
    pages = -(-len(workspace.messages[stack.slack.channel_id("support")]) // 999)
    # Every other call is refused and waited out where it is: each page is fetched once, in
    # one try of the task, and each page after the first is refused once.
    assert pages >= 2
    history = stack.slack.calls["conversations.history"]
    assert history == 2 * pages - 1
    assert stack.worker.log().count("run storm@") == 1
    assert record["calls"]["conversations.history"] == history
    assert record["rate_limited"] == {"conversations.history": pages - 1}


def test_a_long_retry_after_hands_the_worker_back_and_resumes(
    stack: Stack, workspace: Workspace
) -> None:
    name = stack.schedule("long-wait", ["#support"])
    stack.slack.calls.clear()
    stack.slack.rate_limit("conversations.history", every=2, times=1, retry_after=4)
    done = stack.run_then_clear_faults(name)
    record = record_of(done.stdout)
    assert record["totals"]["messages"] == true_totals(workspace, ["support"])["messages"]
    pages = -(-len(workspace.messages[stack.slack.channel_id("support")]) // 999)
    # The second page was refused once: the retried task resumed at it, not from the start.
    assert stack.slack.calls["conversations.history"] == pages + 1
    assert stack.worker.log().count("run long-wait@") == 2
    assert record["rate_limited"] == {"conversations.history": 1}
    waiting = r"^ *[\d.]+s  waiting to try again \(Slack rate-limited conversations.history"
    assert re.search(waiting, done.stderr, re.MULTILINE), done.stderr


def test_digests_run_shows_its_progress_and_ends_with_a_summary(stack: Stack) -> None:
    name = stack.schedule("readable", ["#random"], deliver={"slack": ["#eng-digest"]})
    stack.slack.slow("chat.postMessage", 1.5, times=1)  # long enough to be seen delivering
    command = [sys.executable, "-m", "jobs", "run", name]
    done = subprocess.run(command, cwd=ROOT, env=stack.env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    found = re.fullmatch(rf"queued ({name}@\S+) as task [0-9a-f-]+", lines[0])
    assert found, lines[0]
    assert any(
        re.fullmatch(r" *\d+\.\ds  delivering the digest of [\d,]+ messages", line)
        for line in lines
    )
    posts = stack.posts_for(found[1])
    at = lines.index(next(line for line in lines if line.startswith(f"delivered {found[1]} in ")))
    assert re.fullmatch(r"  [\d,]+ messages, [\d,]+ threads, .+", lines[at + 1])
    assert lines[at + 2 :] == [f"  slack:#eng-digest: posted {posts[0]['ts']}"]
    assert "PROGRESS" not in done.stdout and "{" not in done.stdout


def test_ctrl_c_stops_following_and_the_run_goes_on(stack: Stack) -> None:
    name = stack.schedule("interrupted", ["#random"], deliver={"slack": ["#eng-digest"]})
    calls = stack.slack.calls["conversations.history"]
    stack.slack.slow("conversations.history", 3, times=1)
    follower = subprocess.Popen(
        [sys.executable, "-m", "jobs", "run", name],
        cwd=ROOT,
        env=stack.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until(lambda: stack.slack.calls["conversations.history"] > calls)
    assert follower.stdout is not None
    following = follower.stdout.readline() + follower.stdout.readline()  # queued, then a stage
    follower.send_signal(signal.SIGINT)
    out, err = follower.communicate(timeout=60)
    out = following + out
    assert follower.returncode == 130, out + err
    run, task_id = re.fullmatch(r"queued (\S+) as task (\S+)", out.splitlines()[0]).groups()  # type: ignore[union-attr]
    assert err.strip() == (
        f"stopped following; the run goes on: see how it ends with `digests status {name}` "
        f"or {PUBLIC_URL}tasks/{task_id}"
    )
    wait_until(lambda: stack.posts_for(run), "the run stopped with its follower")


def test_under_slacks_2025_limits_a_digest_completes(stack: Stack, workspace: Workspace) -> None:
    """One call a minute and 15 messages a page: every page but the first is rate-limited
    once, far more often than the retries that used to fail the run."""
    name = stack.schedule(
        "limits-2025", ["#support"], window="3d", deliver={"slack": ["#eng-digest"]}
    )
    stack.slack.limit_like_2025(minute=0.1)
    done = stack.run_then_clear_faults(name)
    record = record_of(done.stdout)
    start, end = (datetime.fromisoformat(bound).timestamp() for bound in record["window"])
    messages = workspace.messages[stack.slack.channel_id("support")]
    counted = [m for m in messages if human(m) and start <= float(m["ts"]) < end]
    assert record["totals"]["messages"] == len(counted)
    # Each page waits out its 429 in place: one refusal a page at most, all in one try.
    pages = len([m for m in messages if float(m["ts"]) >= start]) // 15 + 1
    assert 30 < record["rate_limited"]["conversations.history"] <= pages
    assert record["calls"]["conversations.history"] <= 2 * pages
    assert stack.worker.log().count(f"run {record['run']} waits") == 0


def run_killed_when(stack: Stack, name: str, moment: Callable[[], bool]) -> dict[str, Any]:
    """`digests run NAME`, with the task's process SIGKILLed when `moment()` first holds.

    Celery requeues the task of a lost process (late acks), and the new attempt resumes it.
    """
    follower = subprocess.Popen(
        [sys.executable, "-m", "jobs", "run", name, "--json"],
        cwd=ROOT,
        env=stack.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until(moment)
    for pid in stack.worker.children():
        os.kill(pid, signal.SIGKILL)
    out, err = follower.communicate(timeout=120)
    assert follower.returncode == 0, out + err
    return record_of(out)


def test_a_worker_killed_while_collecting_delivers_once(stack: Stack, workspace: Workspace) -> None:
    name = stack.schedule("killed-in-collect", ["#random"], deliver={"slack": ["#eng-digest"]})
    calls = stack.slack.calls["conversations.history"]
    stack.slack.slow("conversations.history", 3, times=1)
    record = run_killed_when(
        stack, name, lambda: stack.slack.calls["conversations.history"] > calls
    )
    assert record["totals"]["messages"] == true_totals(workspace, ["random"])["messages"]
    posts = stack.posts_for(record["run"])
    assert [p["metadata"]["event_payload"]["part"] for p in posts] == list(range(len(posts)))


def test_a_whole_worker_killed_mid_run_resumes_within_90s_and_delivers_once(
    stack: Stack, workspace: Workspace
) -> None:
    """SIGKILL of the worker itself (OOM, a PaaS's kill): kombu keeps its message unacked for
    hours; the run's lease lapses and beat queues the run again from its journal."""
    name = stack.schedule("worker-killed", ["#random"], deliver={"slack": ["#eng-digest"]})
    calls = stack.slack.calls["conversations.history"]
    stack.slack.slow("conversations.history", 3, times=1)
    queued = stack.run(name, "--no-wait")
    assert queued.returncode == 0, queued.stderr
    wait_until(lambda: stack.slack.calls["conversations.history"] > calls)
    for pid in [stack.worker.pid, *stack.worker.children()]:
        os.kill(pid, signal.SIGKILL)
    assert stack.worker.process is not None
    stack.worker.process.wait()
    beat = Child("digests-beat-")
    beat.spawn([sys.executable, "-m", "celery", "-A", "jobs", "beat"], stack.env)
    try:
        stack.worker = Worker(stack.redis_url, stack.worker.env).start()
        available = time.monotonic()
        history = redis.Redis.from_url(stack.redis_url)
        wait_until(lambda: history.llen(f"digests:history:{name}"), beat.log, timeout=120)
        resumed_in = time.monotonic() - available
        print(f"resumed {resumed_in:.1f}s after a worker was available")  # for bench/RESULTS.md
        history.close()
    finally:
        beat.stop()
    assert resumed_in < 90, f"the run resumed {resumed_in:.0f}s after a worker was available"
    runs = {p["metadata"]["event_payload"]["run"] for p in stack.slack.posted}
    (run,) = [run for run in runs if run.startswith(f"{name}@")]
    posts = stack.posts_for(run)
    assert [p["metadata"]["event_payload"]["part"] for p in posts] == list(range(len(posts)))
    assert "queued again 1 task(s)" in beat.log()


def test_a_worker_stopped_with_sigterm_hands_its_run_back_at_once(stack: Stack) -> None:
    """A PaaS's SIGTERM (Heroku kills 30 s later): the run moves to another worker at its next
    page, rather than holding the stopping worker until the kill."""
    name = stack.schedule("handed-back", ["#random"], deliver={"slack": ["#eng-digest"]})
    stopping = stack.worker
    calls = stack.slack.calls["conversations.history"]
    stack.slack.slow("conversations.history", 6)
    try:
        queued = stack.run(name, "--no-wait")
        assert queued.returncode == 0, queued.stderr
        wait_until(lambda: stack.slack.calls["conversations.history"] > calls)
        other = stack.worker = Worker(stack.redis_url, stopping.env, node="other@%h").start()
        assert stopping.process is not None
        stopping.process.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        stopping.wait_until(lambda: "hands itself back" in stopping.log(), "no hand-back")
        stopping.process.wait(timeout=30)
        exited_in = time.monotonic() - stopped
        history = redis.Redis.from_url(stack.redis_url)
        wait_until(lambda: history.llen(f"digests:history:{name}"), other.log, timeout=60)
        history.close()
    finally:
        stack.slack.clear_faults()
        stopping.stop()
    assert exited_in < 10  # the page it was reading, not the whole run
    assert f"run {name}@" in other.log() and "delivered" in other.log()
    runs = {p["metadata"]["event_payload"]["run"] for p in stack.slack.posted}
    (run,) = [run for run in runs if run.startswith(f"{name}@")]
    posts = stack.posts_for(run)
    assert [p["metadata"]["event_payload"]["part"] for p in posts] == list(range(len(posts)))


def test_a_worker_killed_after_posting_does_not_post_twice(stack: Stack) -> None:
    name = stack.schedule("killed-in-slack", ["#random"], deliver={"slack": ["#eng-digest"]})
    before = len(stack.slack.posted)
    stack.slack.slow("chat.postMessage", 3, times=1, after=True)
    record = run_killed_when(stack, name, lambda: len(stack.slack.posted) > before)
    posts = stack.posts_for(record["run"])
    assert posts[0]["ts"] == stack.slack.posted[before]["ts"]  # the post that landed unrecorded
    assert [p["metadata"]["event_payload"]["part"] for p in posts] == list(range(len(posts)))


def test_a_worker_killed_while_mailing_mails_only_who_is_owed(stack: Stack) -> None:
    name = stack.schedule("killed-in-mail", ["#random"], deliver={"email": list(RECIPIENTS)})
    before = len(stack.mail.received)
    stack.mail.hold_answer(3)
    run_killed_when(stack, name, lambda: len(stack.mail.received) > before)
    mails = stack.mails_for(name, before)
    assert sorted(mails) == sorted(RECIPIENTS)
    # The first was accepted but never recorded, so it went again, with the same Message-ID.
    first = [str(m["Message-ID"]) for m in mails[RECIPIENTS[0]]]
    assert len(first) == 2 and first[0] == first[1]
    assert all(len(mails[r]) == 1 for r in RECIPIENTS[1:])


def test_an_smtp_4xx_is_retried_for_that_recipient_only(stack: Stack) -> None:
    name = stack.schedule("greylisted", ["#random"], deliver={"email": list(RECIPIENTS)})
    before = len(stack.mail.received)
    stack.mail.fail_recipient(RECIPIENTS[1], code=451, text="4.7.1 Greylisted", times=1)
    done = stack.run(name)
    assert done.returncode == 0, done.stdout + done.stderr
    mails = stack.mails_for(name, before)
    assert sorted(mails) == sorted(RECIPIENTS)
    assert all(len(sent) == 1 for sent in mails.values())
    assert record_of(done.stdout)["destinations"]["email:" + RECIPIENTS[1]] == "sent"


def test_who_unsubscribed_by_the_link_in_a_digest_gets_no_more(stack: Stack) -> None:
    name = stack.schedule("leaving", ["#eng"])
    assert stack.run(name).returncode == 0
    header = stack.mails_for(name)["ben@example.com"][0]["List-Unsubscribe"]
    link = str(header).strip("<>").removeprefix(PUBLIC_URL.rstrip("/"))
    with TestClient(create_app(Settings.from_env(stack.env))) as web:
        clicked = web.post(link, data={"List-Unsubscribe": "One-Click"})
    assert clicked.status_code == 200, clicked.text

    since = len(stack.mail.received)
    again = stack.run(name)
    assert again.returncode == 0, again.stdout + again.stderr
    record = record_of(again.stdout)
    assert record["status"] == "delivered"
    assert record["destinations"]["email:ben@example.com"] == "unsubscribed"
    assert sorted(stack.mails_for(name, since)) == ["ana@example.com", "cy@example.com"]
    assert stack.posts_for(record["run"])  # Slack is not a mailing list: it still gets it


def test_a_quiet_window_sends_nothing_and_says_why(stack: Stack) -> None:
    name = stack.schedule("quiet", ["#leadership"], window="1m", skip_if_quiet=True)
    before = (len(stack.slack.posted), len(stack.mail.received))
    done = stack.run(name)
    assert done.returncode == 0, done.stdout + done.stderr
    record = record_of(done.stdout)
    assert (record["status"], record["reason"]) == ("skipped", "quiet window")
    assert (len(stack.slack.posted), len(stack.mail.received)) == before


def on_demand_posts(stack: Stack, channel: str) -> list[dict[str, Any]]:
    return [
        p
        for p in stack.slack.posted
        if p["channel_id"] == stack.slack.channel_id(channel)
        and p["metadata"]["event_payload"]["run"].startswith("on-demand@")
    ]


def test_digest_now_posts_where_it_was_asked(stack: Stack) -> None:
    here = stack.slack.channel_id("eng-digest")
    settings = Settings.from_env(environment(stack.redis_url))
    with HttpSink() as replies, TestClient(create_app(settings)) as client:
        body, headers = signed_form(command_form("now #eng 3d", replies.url("/r"), channel_id=here))
        answer = client.post("/slack/commands", content=body, headers=headers)
        assert answer.json()["text"] == "Working on `/digest now`…"
        wait_until(lambda: replies.posts)
    assert replies.posts[0][1]["text"] == "Posted the digest of #eng for the last 3d."
    posts = on_demand_posts(stack, "eng-digest")
    assert posts and posts[0]["text"].startswith("#eng digest")


def test_digest_now_says_what_went_wrong(stack: Stack) -> None:
    settings = Settings.from_env(environment(stack.redis_url))
    with HttpSink() as replies, TestClient(create_app(settings)) as client:
        form = command_form("now #design", replies.url("/r"), channel_id="C0NOWHERE")
        body, headers = signed_form(form)
        client.post("/slack/commands", content=body, headers=headers)
        wait_until(lambda: replies.posts)
    reply = replies.posts[0][1]["text"]
    assert reply.startswith("No digest: the app is not in #design")


def test_mentioning_the_app_with_now_posts_a_digest(stack: Stack) -> None:
    here = stack.slack.channel_id("support-leads")
    settings = Settings.from_env(environment(stack.redis_url))
    mention = event_callback("app_mention", channel=here, text="<@U0BOT> now #support 1d")
    with TestClient(create_app(settings)) as client:
        body, headers = signed_json(mention)
        assert client.post("/slack/events", content=body, headers=headers).status_code == 200
        wait_until(lambda: on_demand_posts(stack, "support-leads"))
    assert f"on-demand@{mention['event_id']}" in {
        p["metadata"]["event_payload"]["run"] for p in on_demand_posts(stack, "support-leads")
    }


def test_preview_prints_the_digest_and_delivers_nothing(stack: Stack, tmp_path: Path) -> None:
    name = stack.schedule("previewed", ["#eng"])
    before = (len(stack.slack.posted), len(stack.mail.received))
    html = tmp_path / "digest.html"
    command = [sys.executable, "-m", "jobs", "preview", name, "--html", str(html)]
    shown = subprocess.run(command, cwd=ROOT, env=stack.env, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"Subject: {name}")
    assert "<html" in html.read_text()
    command = [sys.executable, "-m", "jobs", "preview", name, "--blocks"]
    blocks = subprocess.run(command, cwd=ROOT, env=stack.env, capture_output=True, text=True)
    assert json.loads(blocks.stdout)[0]["blocks"][0]["type"] == "header"
    assert (len(stack.slack.posted), len(stack.mail.received)) == before


def test_a_mention_that_cannot_be_served_is_answered_in_its_thread(stack: Stack) -> None:
    here = stack.slack.channel_id("support-leads")
    settings = Settings.from_env(environment(stack.redis_url))
    said = stack.slack.workspace.messages[here][-1]["ts"]  # the mention is a real message
    mention = event_callback("app_mention", channel=here, ts=said, text="<@U0BOT> now #nowhere")
    before = len(stack.slack.posted)
    with TestClient(create_app(settings)) as client:
        body, headers = signed_json(mention)
        assert client.post("/slack/events", content=body, headers=headers).status_code == 200
        wait_until(lambda: len(stack.slack.posted) > before)
    reply = stack.slack.posted[before]
    assert reply["thread_ts"] == mention["event"]["ts"]
    assert reply["text"] == "No digest: there is no channel #nowhere that the app can see"


def test_a_burst_at_one_slot_asks_slack_for_each_page_once(
    stack: Stack, workspace: Workspace
) -> None:
    """Four schedules due at one slot read two shared channels, one of them over a day rather
    than the week: every history and replies page is fetched once, by one of them. The slot is
    the last hour's, so that the week before it holds the workspace's history whatever the day
    (a Monday 09:00 slot, seen on a Sunday, is older than all of it)."""
    hourly = {"cron": "0 * * * *", "deliver": {"slack": ["#eng-digest"]}}
    names = [
        stack.schedule(f"burst-{i}", ["#support", "#random"], window="7d", **hourly)
        for i in range(3)
    ]
    names.append(stack.schedule("burst-daily", ["#random"], window="24h", **hourly))
    schedules = load(stack.schedules)
    now = datetime.now(UTC)
    slot = schedules[names[0]].latest_slot(now)
    cache = redis.Redis.from_url(stack.redis_url)
    stack.slack.traffic.clear()
    runs = [Run(name, slot) for name in names]
    for run in runs:
        enqueue(cache, run_job(schedules[run.schedule], run))
    wait_until(lambda: all(Ledger(cache, run.id).record() for run in runs), timeout=90)
    records = [Ledger(cache, run.id).record() for run in runs]
    assert all(record and record.status == "delivered" for record in records), records
    summary = stack.slack.summary()
    for method in ("conversations.history", "conversations.replies"):
        assert summary[method]["calls"] == summary[method]["distinct pages"] > 0, summary
        # Each call is in the record of the run that made it, and in no other.
        counted = sum((record.calls or {}).get(method, 0) for record in records if record)
        assert counted == summary[method]["calls"]
    # A first try looks for no earlier post: no history call on the destination.
    destination = stack.slack.channel_id("eng-digest")
    paged = [call.page for call in stack.slack.traffic if call.page]
    assert not [page for page in paged if page[0:2] == ("conversations.history", destination)]
    for record in records:
        assert record is not None and record.lateness is not None
        assert record.lateness == pytest.approx(record.finished - slot.timestamp(), abs=0.01)
    shared = list(cache.scan_iter("digests:page:*"))
    assert shared and all(0 < cache.ttl(key) <= 300 for key in shared)
    cache.close()


def test_a_worker_killed_while_fetching_a_shared_page_delivers_every_run_once(
    stack: Stack, workspace: Workspace
) -> None:
    """Both runs of a burst are killed while one of them holds the lease of a page the other
    waits for: the page is fetched again, and each run delivers once."""
    hourly = {"cron": "0 * * * *", "deliver": {"slack": ["#eng-digest"]}}  # as in the burst
    names = [stack.schedule(f"lease-{i}", ["#general"], window="7d", **hourly) for i in range(2)]
    schedules = load(stack.schedules)
    slot = schedules[names[0]].latest_slot(datetime.now(UTC))
    cache = redis.Redis.from_url(stack.redis_url)
    calls = stack.slack.calls["conversations.history"]
    stack.slack.slow("conversations.history", 3, times=1)
    runs = [Run(name, slot) for name in names]
    for run in runs:
        enqueue(cache, run_job(schedules[run.schedule], run))
    wait_until(lambda: stack.slack.calls["conversations.history"] > calls)
    time.sleep(0.3)  # the other run is waiting on the lease by now
    for pid in stack.worker.children():
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: all(Ledger(cache, run.id).record() for run in runs), timeout=120)
    assert stack.slack.calls["conversations.history"] >= calls + 2  # the killed fetch, again
    for run in runs:
        record = Ledger(cache, run.id).record()
        assert record is not None and record.status == "delivered", record
        assert record.totals is not None and record.totals["messages"] > 0
        posts = stack.posts_for(run.id)
        assert [p["metadata"]["event_payload"]["part"] for p in posts] == list(range(len(posts)))
    cache.close()
