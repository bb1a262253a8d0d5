"""`scripts/dev`: the whole service on this machine, with nothing to configure.

Redis (an embedded `redis-server` unless `REDIS_URL` is set) and every process of the Procfile, the
web on loopback only. Without `SLACK_BOT_TOKEN` it runs against the sandbox: the Slack simulator
serving a demo workspace, an SMTP sink that keeps each mail as an .eml file, and demo schedules that
fire within a minute. Each child leads its own process group and writes through this process, so
SIGINT, SIGTERM, SIGHUP (the terminal closed) and a stdout that stops taking output (`| tee`,
then Ctrl-C) all stop every one of them. `.dev/env` holds the stack's environment for `digests` in
another terminal.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import signal
import smtplib
import socket
import sys
import threading
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
from sandbox.stack import ROOT, Child, Interrupted, Stack, StartError
from sandbox.workspace import BOT_TOKEN

BIN = Path(sys.executable).parent
DEMO_SCHEDULES = ROOT / "sandbox" / "demo_schedules.yaml"
PROCFILE = ROOT / "Procfile"
HOST = "127.0.0.1"
# What the Procfile's processes print once they are up: the list is shown after their banners.
STARTED = {"worker": (" ready.",), "beat": (" leads", " stands by")}
# What another terminal needs to talk to the dev stack (`set -a; . .dev/env; set +a`).
SHARED = (
    "REDIS_URL",
    "SLACK_API_URL",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SMTP_URL",
    "EMAIL_FROM",
    "TRIGGER_TOKEN",
    "PUBLIC_URL",
    "SCHEDULES_FILE",
    "LLM_API_URL",
    "STATUS_AUTH",
)
ENVIRONMENT = """environment:
  PORT             the web port (default 8000)
  REDIS_URL        use this Redis (default: an embedded redis-server on a free port)
  SLACK_BOT_TOKEN  use real Slack, schedules.yaml and SMTP_URL (default: the sandbox)
  SCHEDULES_FILE   the schedules to run (default: sandbox/demo_schedules.yaml in the sandbox)
  LLM_API_URL      the LLM for `summarizer: llm` (default: the sandbox's stub, in the sandbox)
  DEV_MAIL_DIR     where the sandbox keeps mail as .eml files (default: .dev/mail)
  DEV_ENV_FILE     where to write the stack's environment (default: .dev/env)
"""


@dataclass(frozen=True)
class Sandbox:
    """Where the Slack simulator, the SMTP sink and the LLM stub listen, and where the mail
    goes."""

    slack_port: int
    smtp_port: int
    llm_port: int
    mail_dir: Path

    @property
    def slack_url(self) -> str:
        return f"http://{HOST}:{self.slack_port}"

    @property
    def llm_url(self) -> str:
        return f"http://{HOST}:{self.llm_port}/v1"


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
) -> dict[str, str]:
    """The environment of every process, with secrets made up for what is not set."""
    env = dict(environ)
    made = {}
    port = env.get("PORT") or "8000"
    env["PORT"] = port
    if redis_url:
        env["REDIS_URL"] = redis_url
    env["PUBLIC_URL"] = env.get("PUBLIC_URL") or f"http://{HOST}:{port}"
    if not env.get("TRIGGER_TOKEN"):
        made["TRIGGER_TOKEN"] = secrets.token_urlsafe(24)
    if not env.get("STATUS_AUTH"):  # printed: the status pages are for whoever runs this
        made["STATUS_AUTH"] = f"dev:{secrets.token_urlsafe(12)}"
    if sandbox:
        # All of Slack and SMTP is the sandbox's, so no demo digest reaches a real person.
        env["SLACK_API_URL"] = f"{sandbox.slack_url}/api/"
        env["SLACK_BOT_TOKEN"] = BOT_TOKEN
        env["SMTP_URL"] = f"smtp://{HOST}:{sandbox.smtp_port}?tls=off"
        env["EMAIL_FROM"] = "Slack Digests <digests@example.com>"
        env["SCHEDULES_FILE"] = env.get("SCHEDULES_FILE") or str(DEMO_SCHEDULES)
        env["LLM_API_URL"] = env.get("LLM_API_URL") or sandbox.llm_url  # a real one if set
        if not env.get("SLACK_SIGNING_SECRET"):
            made["SLACK_SIGNING_SECRET"] = secrets.token_hex(16)
    env.update(made)
    # The Procfile's commands live in this virtualenv.
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


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
    stack.say("starting the Slack simulator with the demo workspace (a week of history up to now)")
    calls = f"{sandbox.slack_url}/sandbox/calls"
    what = f"the Slack simulator on port {sandbox.slack_port}"
    serve(
        stack, what, "slack", ["--port", str(sandbox.slack_port)], env, lambda: http_answers(calls)
    )
    stack.say("starting the SMTP sink")
    sink_args = ["--port", str(sandbox.smtp_port), "--folder", str(sandbox.mail_dir)]
    what = f"the SMTP sink on port {sandbox.smtp_port}"
    serve(stack, what, "smtp_sink", sink_args, env, lambda: smtp_answers(sandbox.smtp_port))
    if env["LLM_API_URL"] != sandbox.llm_url:
        stack.say(f"using the LLM at {mask_url(env['LLM_API_URL'])} (LLM_API_URL)")
        return
    stack.say("starting the LLM stub (for `summarizer: llm`)")
    models = f"{sandbox.llm_url}/models"
    what = f"the LLM stub on port {sandbox.llm_port}"
    serve(stack, what, "llm", ["--port", str(sandbox.llm_port)], env, lambda: http_answers(models))


def serve(
    stack: Stack,
    what: str,
    module: str,
    args: list[str],
    env: Mapping[str, str],
    answers: Callable[[], bool],
) -> None:
    """`python -m sandbox.<module> ARGS`, once it answers."""
    name = module.removesuffix("_sink")
    child = stack.spawn(name, [sys.executable, "-m", f"sandbox.{module}", *args], env)
    stack.wait_for(what, answers, [child])


def start_redis(stack: Stack, private: RedisServer | None, env: Mapping[str, str]) -> None:
    if private is None:
        url = env["REDIS_URL"]
        stack.say(f"using Redis at {mask_url(url)} (REDIS_URL)")
        problem = redis_answers(url)
        if problem:
            raise StartError(
                f"Redis at {mask_url(url)} does not answer ({problem}); "
                "unset REDIS_URL to run an embedded one"
            )
        return
    stack.say(f"starting Redis (embedded, in memory) at {private.url}")
    stack.redis = private
    try:
        private.start()
    except (RuntimeError, FileNotFoundError) as error:
        raise StartError(str(error)) from None


def procfile() -> dict[str, str]:
    """The Procfile's commands by process type, as Heroku reads them; in dev the web listens on
    loopback only, since its routes take the made-up tokens."""
    commands = {}
    for line in PROCFILE.read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.startswith("#"):
            commands[name.strip()] = command.strip()
    commands["web"] = commands["web"].replace("--host 0.0.0.0", f"--host {HOST}")
    return commands


def start_procfile(stack: Stack, env: Mapping[str, str], port: int) -> list[Child]:
    stack.say("starting the Procfile's processes: " + ", ".join(procfile()))
    started = [
        stack.spawn(name, ["sh", "-c", f"exec {command}"], env, procfile=True)
        for name, command in procfile().items()
    ]
    by_name = {child.name: child for child in started}
    stack.wait_for(
        "the Procfile's processes",
        lambda: (
            all(by_name[name].printed(*texts) for name, texts in STARTED.items())
            and http_answers(f"http://{HOST}:{port}/readyz")
        ),
        started,
    )
    return started


def write_env(path: Path, env: Mapping[str, str]) -> None:
    """The stack's environment for another terminal's `digests …`; only its owner may read it,
    since it holds the tokens."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# scripts/dev's environment: `set -a; . .dev/env; set +a`, then `digests …`"]
    lines += [f"{name}={shlex.quote(env[name])}" for name in SHARED if env.get(name)]
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write("\n".join(lines) + "\n")


def show(
    stack: Stack,
    settings: Settings,
    schedules: dict[str, Schedule],
    sandbox: Sandbox | None,
    env_file: Path,
) -> None:
    """Where to look, once every process is up (after their banners, so it stays in view)."""
    web = f"http://{HOST}:{settings.port}"
    user, password = settings.status_auth or ("", "")
    lines = [
        f"web         {web}/healthz",
        f"status      {web}/  (user {user}, password {password})",
        f"schedules   {web}/schedules  (the same credentials)",
    ]
    if sandbox:
        lines += [
            f"Slack posts {sandbox.slack_url}/sandbox/posted  (what digests posted to the sandbox)",
            f"/digest     {sandbox.slack_url}/sandbox/responses  (the answers to slash commands)",
            f"mail        {sandbox.mail_dir}  (an .eml file per message)",
        ]
    lines += [
        f"schedule    {s.name}: cron {s.cron!r} {s.timezone}{'' if s.enabled else ' (disabled)'}"
        for s in schedules.values()
    ]
    shown = env_file.relative_to(ROOT) if env_file.is_relative_to(ROOT) else env_file
    lines.append(f"in another terminal: set -a; . {shown}; set +a   (this stack's tokens), then:")
    if schedules:
        name = next(iter(schedules))
        lines.append(f"  run       .venv/bin/digests run {name}")
        lines.append(
            '  trigger   curl -X POST -H "Authorization: Bearer $TRIGGER_TOKEN" '
            f'-H "Idempotency-Key: $(date +%s)" {web}/triggers/{name}'
        )
    if sandbox:
        lines.append("  /digest   .venv/bin/python -m sandbox.send '/digest now #eng 7d'")
        lines.append("  mention   .venv/bin/python -m sandbox.send '@Slack Digests now #eng'")
    if not settings.slack_signing_secret:
        lines.append("SLACK_SIGNING_SECRET is not set: /slack/* answer 503 until it is")
    stack.say("ready; where to look:\n" + "\n".join(f"    {line}" for line in lines))
    stack.say(f"beat runs {settings.schedules_file}; Ctrl-C stops everything")


def run(stack: Stack, environ: Mapping[str, str]) -> int:
    sandbox = None
    if not environ.get("SLACK_BOT_TOKEN"):
        mail_dir = Path(environ.get("DEV_MAIL_DIR") or ROOT / ".dev" / "mail").resolve()
        sandbox = Sandbox(free_port(), free_port(), free_port(), mail_dir)
    private = None if environ.get("REDIS_URL") else RedisServer()
    env = environment(environ, private.url if private else None, sandbox)
    settings, schedules = check(env)
    if sandbox:
        stack.say("no SLACK_BOT_TOKEN: running against the Slack and SMTP sandbox")
    else:
        stack.say(f"SLACK_BOT_TOKEN is set: running against {settings.slack_api_url}")
        if not settings.smtp:
            stack.say("SMTP_URL is not set: email destinations will fail")
    start_redis(stack, private, env)
    if sandbox:
        start_sandbox(stack, sandbox, env)
    started = start_procfile(stack, env, settings.port)
    env_file = Path(environ.get("DEV_ENV_FILE") or ROOT / ".dev" / "env").resolve()
    write_env(env_file, env)
    stack.env_file = env_file
    show(stack, settings, schedules, sandbox, env_file)
    while not stack.stopping.wait(0.5):
        for child in started:
            if child.process.poll() is not None:
                raise StartError(f"{child.name} exited (code {child.process.returncode})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/dev",
        description="Run Redis and the Procfile's processes on this machine; Ctrl-C stops them.",
        epilog=ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(argv)
    stack = Stack(threading.Event())

    def stop(signum: int, frame: FrameType | None) -> None:
        stack.stopping.set()

    # SIGHUP too: closing the terminal must not orphan Redis and the workers.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)
    try:
        return run(stack, os.environ)
    except StartError as error:
        with suppress(OSError):  # a closed terminal must not keep the stack from stopping
            print(f"scripts/dev: {error}", file=sys.stderr, flush=True)
        return 1
    except Interrupted:
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
