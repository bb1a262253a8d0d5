"""Heroku's deploy/app.json and Render's deploy/render.yaml: each runs the Procfile on a Redis
that keeps every task, hands each process the variables it reads, keeps the secrets out of the
files, and sets what uvicorn and celery read their concurrency from."""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest
import uvicorn
from celery.app.utils import find_app
from celery.bin.celery import celery as celery_cli
from uvicorn.main import main as uvicorn_cli

from tests.deploy.helpers import (
    DEPLOY,
    PROCESSES,
    SECRETS,
    celery_context,
    config_variables,
    procfile,
    render_services,
    routes,
    shell_argv,
)
from webhook.health import healthz

# Variables the service reads that a deployment need not set, and why.
NOT_DEPLOYED = {
    "SLACK_API_URL": "Slack itself is the default; only the sandbox or a proxy sets it",
    "SCHEDULES_FILE": "the committed schedules.yaml is the default",
    "PORT": "the platform sets it (compose sets it from .env)",
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


def deployed_variables() -> set[str]:
    return config_variables() - NOT_DEPLOYED.keys()


def app_json() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DEPLOY / "app.json").read_text())
    return loaded


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
