"""What several modules of tests/deploy read: the deployment files as their tools read them, the
argv a shell or compose makes of a command, and the code the files are checked against."""

from __future__ import annotations

import fnmatch
import re
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
import yaml
from celery import Celery
from celery.bin.base import CLIContext
from celery.bin.celery import celery as celery_cli
from starlette.routing import Route

from jobs.config import Settings
from tests.conftest import ROOT
from webhook.app import create_app

BIN = Path(sys.executable).parent
DEPLOY = ROOT / "deploy"
PROCESSES = ("web", "worker", "beat")
SECRETS = (
    "SLACK_SIGNING_SECRET",
    "SLACK_BOT_TOKEN",
    "TRIGGER_TOKEN",
    "SMTP_URL",
    "SENTRY_DSN",
    "LLM_API_KEY",
    "STATUS_AUTH",
)


# --- reading the files ------------------------------------------------------------------------


def procfile() -> dict[str, str]:
    """Process type → command, as Heroku and scripts/dev read the Procfile."""
    commands = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        found = re.fullmatch(r"([A-Za-z0-9_-]+):\s*(.+)", line.strip())
        assert found, f"Procfile: {line!r} is not 'name: command'"
        commands[found.group(1)] = found.group(2)
    return commands


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of deploy/Dockerfile, continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        keyword, _, rest = (pending + line).strip().partition(" ")
        instructions.append((keyword.upper(), " ".join(rest.split())))
        pending = ""
    return instructions


def instruction(name: str) -> str:
    found = [rest for keyword, rest in dockerfile() if keyword == name]
    assert len(found) == 1, f"deploy/Dockerfile has {len(found)} {name} instructions, not one"
    return found[0]


def docker_ignores(path: str) -> bool:
    """Whether .dockerignore keeps `path` out of the build context (last matching rule wins)."""
    ignored = False
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for rule in (ROOT / ".dockerignore").read_text().splitlines():
        rule = rule.strip()
        if not rule or rule.startswith("#"):
            continue
        negated = rule.startswith("!")
        pattern = rule.removeprefix("!").removeprefix("/")
        patterns = (
            [pattern, pattern.removeprefix("**/")] if pattern.startswith("**/") else [pattern]
        )
        if any(fnmatch.fnmatch(c, p) for c in candidates for p in patterns):
            ignored = not negated
    return ignored


def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "slack-app-manifest.yaml").read_text())
    return loaded


def render_services() -> dict[str, dict[str, Any]]:
    """The Blueprint's services, keyed by the Procfile process whose command each runs."""
    blueprint = yaml.safe_load((DEPLOY / "render.yaml").read_text())
    by_command = {service.get("startCommand"): service for service in blueprint["services"]}
    found = {process: by_command[command] for process, command in procfile().items()}
    found.update({s["type"]: s for s in blueprint["services"] if s["type"] == "keyvalue"})
    return found


# --- the code the files are checked against ---------------------------------------------------


def config_variables() -> set[str]:
    """Every environment variable jobs/config.py reads: the one place that reads them."""
    return set(re.findall(r'\bget\("([A-Z][A-Z0-9_]*)"\)', (ROOT / "jobs/config.py").read_text()))


def python_files() -> list[Path]:
    return sorted(p for d in ("jobs", "webhook") for p in (ROOT / d).rglob("*.py"))


def routes() -> dict[object, Route]:
    app = create_app(Settings.from_env({"REDIS_URL": "redis://127.0.0.1:1/0"}))
    return {route.endpoint: route for route in app.routes if isinstance(route, Route)}


def celery_context(app: Celery) -> click.Context:
    """The context `celery -A jobs` gives its subcommands (environment prefix included)."""
    return click.Context(
        celery_cli,
        info_name="celery",
        obj=CLIContext(app=app, no_color=True, workdir=None),
        auto_envvar_prefix="CELERY",
    )


# --- what a shell and docker compose do to a command ------------------------------------------

VARIABLE = re.compile(
    r"\$(?:(?P<dollar>\$)|\{(?P<braced>[A-Za-z_]\w*)(?:(?P<op>:?-)(?P<default>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_]\w*))"
)


def interpolate(text: str, env: Mapping[str, str], *, compose: bool) -> str:
    """Expand `$NAME`, `${NAME}`, `${NAME:-default}` and `${NAME-default}` as sh does for the
    Procfile and as compose does when it reads its file; compose also turns `$$` into `$`."""

    def replace(match: re.Match[str]) -> str:
        if match.group("dollar"):
            assert compose, f"{text!r}: '$$' is compose's escape, not the shell's"
            return "$"
        name = match.group("braced") or match.group("bare")
        value = env.get(name)
        if match.group("op") == ":-" and not value:
            return match.group("default")
        if match.group("op") == "-" and value is None:
            return match.group("default")
        return value or ""

    return VARIABLE.sub(replace, text)


def shell_argv(command: str, env: Mapping[str, str]) -> list[str]:
    """The argv a shell runs for a Procfile-style command line."""
    return shlex.split(interpolate(command, env, compose=False))


def compose_argv(command: str | list[str], env: Mapping[str, str]) -> list[str]:
    """The argv compose execs for `command:`: interpolated, then split without a shell."""
    if isinstance(command, list):
        return [interpolate(word, env, compose=True) for word in command]
    return shlex.split(interpolate(command, env, compose=True))


def healthcheck_argv(test: str | list[str], env: Mapping[str, str]) -> list[str]:
    """The argv docker runs for a compose healthcheck `test:`."""
    words = [test] if isinstance(test, str) else test
    if words[0] == "CMD":
        return compose_argv(words[1:], env)
    assert words[0] == "CMD-SHELL", f"healthcheck {test!r} is neither CMD nor CMD-SHELL"
    return ["sh", "-c", interpolate(" ".join(words[1:]), env, compose=True)]
