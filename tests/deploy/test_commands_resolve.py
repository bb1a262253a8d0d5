"""Each Procfile command resolves: its program is installed, and uvicorn's and celery's own
parsers accept its options and find the app it names, so a typo fails here and not at boot."""

from __future__ import annotations

import logging
import shutil

import pytest
import uvicorn
from celery import Celery
from celery.app.utils import find_app
from celery.beat import Scheduler
from celery.bin.celery import celery as celery_cli
from celery.utils.imports import symbol_by_name
from starlette.applications import Starlette
from uvicorn.importer import import_from_string
from uvicorn.main import main as uvicorn_cli

from tests.deploy.helpers import BIN, celery_context, compose, compose_argv, procfile, shell_argv


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
    scheduler_name = "jobs.scheduling.beat:Scheduler"
    assert context.params["scheduler"] == app.conf.beat_scheduler == scheduler_name
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
