"""Every platform runs the Procfile's commands: compose, the image's default command and the
Render Blueprint make the same argv of them as a shell does, so no file drifts from the others."""

from __future__ import annotations

import json

import pytest

from tests.deploy.helpers import (
    PROCESSES,
    compose,
    compose_argv,
    instruction,
    interpolate,
    procfile,
    render_services,
    shell_argv,
)

# The environments the commands are compared in: defaults, and every variable set.
ENVIRONMENTS: list[dict[str, str]] = [{}, {"PORT": "5123", "LOG_LEVEL": "DEBUG"}]


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
        # Render runs startCommand in a shell, as Heroku and scripts/dev run the Procfile.
        assert service["startCommand"] == command
        assert service["type"] == ("web" if process == "web" else "worker")
