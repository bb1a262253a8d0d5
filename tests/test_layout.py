"""The layout's promises: imports point one way, only Celery loads the tasks, and the web process
and the quick commands load nothing they do not use."""

from __future__ import annotations

import ast
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("jobs", "webhook")
WORKER_SIDE = ("celery", "kombu", "slack_sdk", "jobs.tasks", "jobs.digest.pipeline")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top_level_imports(path: Path, known: set[str]) -> set[str]:
    """The project's modules that `path` imports when it is loaded (not inside functions, and not
    only for type checking)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {name for name in names if name in known}
    return found - {module_name(path)}


def import_graph() -> dict[str, set[str]]:
    paths = [path for package in PACKAGES for path in (ROOT / package).rglob("*.py")]
    known = {module_name(path) for path in paths}
    return {module_name(path): top_level_imports(path, known) for path in paths}


def test_the_modules_import_one_another_without_a_cycle() -> None:
    graph = import_graph()
    assert {"jobs.queue", "jobs.scheduling.beat", "webhook.app"} <= graph.keys()
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as error:
        pytest.fail(f"import cycle: {' -> '.join(error.args[1])}")


def test_nothing_but_celery_loads_the_tasks() -> None:
    importers = {name for name, imported in import_graph().items() if "jobs.tasks" in imported}
    assert importers == set()
    lazily = [
        path
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "from jobs.tasks" in path.read_text() or "import jobs.tasks" in path.read_text()
    ]
    assert lazily == []


def loaded_modules(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running `code`."""
    shown = "import sys; print('\\n'.join(sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\n{shown}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return set(done.stdout.split())


def worker_side(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == w or m.startswith(f"{w}.") for w in WORKER_SIDE))


def test_the_web_process_loads_no_worker_module() -> None:
    modules = loaded_modules("import webhook")
    assert "webhook.app" in modules and "jobs.queue" in modules
    assert worker_side(modules) == []


def command_modules(*args: str) -> set[str]:
    """The modules `digests ARGS` imports, as `python -X importtime` reports them."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "jobs", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}


@pytest.mark.parametrize(
    "args", [("--help",), ("validate", str(ROOT / "sandbox" / "demo_schedules.yaml"))]
)
def test_help_and_validate_load_no_celery_redis_or_slack(args: tuple[str, ...]) -> None:
    modules = command_modules(*args)
    assert "jobs.cli" in modules
    heavy = sorted(
        m for m in modules if m.split(".")[0] in ("celery", "kombu", "redis", "slack_sdk")
    )
    assert heavy == []
