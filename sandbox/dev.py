"""`scripts/dev`: the whole service on this machine, with nothing to configure.

Redis (an embedded `redis-server` unless `REDIS_URL` is set) and every process of the Procfile under
honcho. Without `SLACK_BOT_TOKEN` it runs against the sandbox: the Slack simulator serving a demo
workspace, an SMTP sink that keeps each mail as an .eml file, and demo schedules that fire within
a minute. Each child leads its own process group, so Ctrl-C or SIGTERM stops all of it.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import redis

from jobs.config import Settings, mask_url
from jobs.errors import ConfigError, ScheduleError
from jobs.scheduling.file import load
from jobs.scheduling.slots import Schedule
from sandbox.redis_server import RedisServer, free_port
from sandbox.workspace import BOT_TOKEN

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEMO_SCHEDULES = ROOT / "sandbox" / "demo_schedules.yaml"
HOST = "127.0.0.1"
START_TIMEOUT = 60.0
ENVIRONMENT = """environment:
  PORT             the web port (default 8000)
  REDIS_URL        use this Redis (default: an embedded redis-server on a free port)
  SLACK_BOT_TOKEN  use real Slack, schedules.yaml and SMTP_URL (default: the sandbox)
  SCHEDULES_FILE   the schedules to run (default: sandbox/demo_schedules.yaml in the sandbox)
  DEV_MAIL_DIR     where the sandbox keeps mail as .eml files (default: .dev/mail)
"""
# honcho gives its processes 5 s after SIGTERM before it kills them.
STOP_TIMEOUT = 15.0


class StartError(Exception):
    """A part of the stack could not start; the message says which, and what to do."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM arrived while the stack was starting."""


@dataclass(frozen=True)
class Sandbox:
    """Where the Slack simulator and the SMTP sink listen, and where the mail goes."""

    slack_port: int
    smtp_port: int
    mail_dir: Path

    @property
    def slack_url(self) -> str:
        return f"http://{HOST}:{self.slack_port}"


@dataclass
class Stack:
    """The processes this run started; each leads its own process group."""

    stopping: threading.Event
    children: list[tuple[str, subprocess.Popen[bytes]]]
    redis: RedisServer | None = None

    def spawn(self, name: str, args: list[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
        child = subprocess.Popen(args, cwd=ROOT, env=env, process_group=0)
        self.children.append((name, child))
        return child

    def wait_for(
        self, what: str, answers: Callable[[], bool], child: subprocess.Popen[bytes] | None = None
    ) -> None:
        """Return once `answers()`; fail, instead of hanging, when `child` exits or time is up."""
        deadline = time.monotonic() + START_TIMEOUT
        while not answers():
            if self.stopping.is_set():
                raise Interrupted
            if child is not None and child.poll() is not None:
                raise StartError(f"{what} exited (code {child.returncode}); its output is above")
            if time.monotonic() > deadline:
                raise StartError(f"{what} did not answer within {START_TIMEOUT:g}s")
            self.stopping.wait(0.1)

    def stop(self) -> None:
        """Newest first: the Procfile's processes before the sandbox and Redis they use."""
        if not (self.children or self.redis):
            return
        say("stopping")
        while self.children:
            name, child = self.children.pop()
            with suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                say(f"{name} did not stop within {STOP_TIMEOUT:g}s: killing it")
            with suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)  # whatever of its group is left
            child.wait()
        if self.redis:
            self.redis.stop()
            self.redis = None
        say("stopped")


def say(text: str) -> None:
    with suppress(OSError):  # a closed terminal must not keep the stack from stopping
        print(f"==> {text}", flush=True)


def http_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:  # refused, timed out, or an HTTP error (URLError is an OSError)
        return False


def smtp_answers(port: int) -> bool:
    try:
        with smtplib.SMTP(HOST, port, timeout=1) as client:
            return client.noop()[0] == 250
    except (smtplib.SMTPException, OSError):
        return False


def redis_answers(url: str) -> str | None:
    """None when Redis at `url` answers a PING, else why not."""
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
        return None
    except redis.RedisError as error:
        return str(error)
    finally:
        client.close()


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
        return True


def environment(
    environ: Mapping[str, str], redis_url: str | None, sandbox: Sandbox | None
) -> tuple[dict[str, str], dict[str, str]]:
    """The environment of every process, and the secrets made up for it (to show them)."""
    env = dict(environ)
    made = {}
    port = env.get("PORT") or "8000"
    env["PORT"] = port
    if redis_url:
        env["REDIS_URL"] = redis_url
    env["PUBLIC_URL"] = env.get("PUBLIC_URL") or f"http://{HOST}:{port}"
    if not env.get("TRIGGER_TOKEN"):
        made["TRIGGER_TOKEN"] = secrets.token_urlsafe(24)
    if sandbox:
        # All of Slack and SMTP is the sandbox's, so no demo digest reaches a real person.
        env["SLACK_API_URL"] = f"{sandbox.slack_url}/api/"
        env["SLACK_BOT_TOKEN"] = BOT_TOKEN
        env["SMTP_URL"] = f"smtp://{HOST}:{sandbox.smtp_port}?tls=off"
        env["EMAIL_FROM"] = "Slack Digests <digests@example.com>"
        env["SCHEDULES_FILE"] = env.get("SCHEDULES_FILE") or str(DEMO_SCHEDULES)
        if not env.get("SLACK_SIGNING_SECRET"):
            made["SLACK_SIGNING_SECRET"] = secrets.token_hex(16)
    env.update(made)
    # The Procfile's commands live in this virtualenv.
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env, made


def next_free_port(port: int) -> int:
    return next((p for p in range(port + 1, min(port + 100, 65536)) if port_is_free(p)), 0)


def check(env: Mapping[str, str]) -> tuple[Settings, dict[str, Schedule]]:
    """The settings and schedules, or a `StartError` saying what is wrong, before anything runs."""
    try:
        settings = Settings.from_env(env)
    except ConfigError as error:
        raise StartError(str(error)) from None
    try:
        schedules = load(settings.schedules_file)
    except ScheduleError as error:
        raise StartError(f"the schedules file has errors:\n{error}") from None
    if not port_is_free(settings.port):
        suggestion = next_free_port(settings.port)
        instead = f", e.g. PORT={suggestion} scripts/dev" if suggestion else ""
        raise StartError(
            f"port {settings.port} is taken (another scripts/dev, or another server?); "
            f"run with PORT=<another port>{instead}"
        )
    return settings, schedules


def start_sandbox(stack: Stack, sandbox: Sandbox, env: Mapping[str, str]) -> None:
    say("starting the Slack simulator with the demo workspace (a week of history up to now)")
    slack = stack.spawn(
        "the Slack simulator",
        [sys.executable, "-m", "sandbox.slack", "--port", str(sandbox.slack_port)],
        env,
    )
    stack.wait_for(
        f"the Slack simulator on port {sandbox.slack_port}",
        lambda: http_answers(f"{sandbox.slack_url}/sandbox/calls"),
        slack,
    )
    say("starting the SMTP sink")
    sink_args = ["--port", str(sandbox.smtp_port), "--folder", str(sandbox.mail_dir)]
    sink = stack.spawn(
        "the SMTP sink", [sys.executable, "-m", "sandbox.smtp_sink", *sink_args], env
    )
    stack.wait_for(
        f"the SMTP sink on port {sandbox.smtp_port}", lambda: smtp_answers(sandbox.smtp_port), sink
    )


def start_redis(stack: Stack, private: RedisServer | None, env: Mapping[str, str]) -> None:
    if private is None:
        url = env["REDIS_URL"]
        say(f"using Redis at {mask_url(url)} (REDIS_URL)")
        problem = redis_answers(url)
        if problem:
            raise StartError(
                f"Redis at {mask_url(url)} does not answer ({problem}); "
                "unset REDIS_URL to run an embedded one"
            )
        return
    say(f"starting Redis (embedded, in memory) at {private.url}")
    stack.redis = private
    try:
        private.start()
    except (RuntimeError, FileNotFoundError) as error:
        raise StartError(str(error)) from None


def show(
    settings: Settings,
    schedules: dict[str, Schedule],
    sandbox: Sandbox | None,
    made: Mapping[str, str],
) -> None:
    """Where to look, once the web answers."""
    web = f"http://{HOST}:{settings.port}"
    lines = [f"web         {web}/healthz", f"schedules   {web}/schedules"]
    if sandbox:
        lines += [
            f"Slack posts {sandbox.slack_url}/sandbox/posted  (what digests posted to the sandbox)",
            f"mail        {sandbox.mail_dir}  (an .eml file per message)",
        ]
    lines += [
        f"schedule    {s.name}: cron {s.cron!r} {s.timezone}{'' if s.enabled else ' (disabled)'}"
        for s in schedules.values()
    ]
    if schedules and settings.trigger_token:
        name = next(iter(schedules))
        lines.append(
            f"trigger     curl -X POST -H 'Authorization: Bearer {settings.trigger_token}' "
            f"{web}/triggers/{name}"
        )
    lines += [f"{name}={value}  (made up for this run)" for name, value in made.items()]
    if not settings.slack_signing_secret:
        lines.append("SLACK_SIGNING_SECRET is not set: /slack/* answer 503 until it is")
    say("ready; where to look:\n" + "\n".join(f"    {line}" for line in lines))
    say(f"beat runs {settings.schedules_file}; Ctrl-C stops everything")


def run(stack: Stack, environ: Mapping[str, str]) -> int:
    sandbox = None
    if not environ.get("SLACK_BOT_TOKEN"):
        mail_dir = Path(environ.get("DEV_MAIL_DIR") or ROOT / ".dev" / "mail").resolve()
        sandbox = Sandbox(free_port(), free_port(), mail_dir)
    private = None if environ.get("REDIS_URL") else RedisServer()
    env, made = environment(environ, private.url if private else None, sandbox)
    settings, schedules = check(env)
    if sandbox:
        say("no SLACK_BOT_TOKEN: running against the Slack and SMTP sandbox")
    else:
        say(f"SLACK_BOT_TOKEN is set: running against {settings.slack_api_url}")
        if not settings.smtp:
            say("SMTP_URL is not set: email destinations will fail")
    start_redis(stack, private, env)
    if sandbox:
        start_sandbox(stack, sandbox, env)
    say("starting the Procfile's processes with honcho")
    # `--env /dev/null`: honcho would let a .env file (docker-compose's) override this environment.
    honcho = [str(BIN / "honcho"), "start", "--env", os.devnull, "--port", str(settings.port)]
    processes = stack.spawn("honcho", honcho, env)
    stack.wait_for(
        "the Procfile's processes (honcho)",
        lambda: http_answers(f"http://{HOST}:{settings.port}/readyz"),
        processes,
    )
    show(settings, schedules, sandbox, made)
    while processes.poll() is None:
        if stack.stopping.wait(0.5):
            return 0
    raise StartError("a process of the Procfile stopped (honcho's output above says which)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/dev",
        description="Run Redis and the Procfile's processes on this machine; Ctrl-C stops them.",
        epilog=ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(argv)
    stack = Stack(threading.Event(), [])

    def stop(signum: int, frame: FrameType | None) -> None:
        stack.stopping.set()

    # SIGHUP too: closing the terminal must not orphan Redis and the workers.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)
    try:
        return run(stack, os.environ)
    except StartError as error:
        print(f"scripts/dev: {error}", file=sys.stderr, flush=True)
        return 1
    except Interrupted:
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
