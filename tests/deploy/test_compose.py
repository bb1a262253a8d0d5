"""docker-compose.yml against the Compose Specification's JSON schema, and the .env files it reads:
a file compose would refuse, or a variable nobody documents, fails here rather than at `up`."""

from __future__ import annotations

import copy
import json
import re
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from tests.conftest import ROOT
from tests.deploy.helpers import (
    SECRETS,
    compose,
    compose_argv,
    config_variables,
    docker_ignores,
    healthcheck_argv,
)

# The services docker-compose.yml runs from the one image.
IMAGE_SERVICES = ("web", "worker", "beat", "flower")
# Variables .env.example documents that jobs/config.py does not read, and who reads them.
ENV_EXAMPLE_EXTRAS = {
    "WEB_CONCURRENCY": "uvicorn's worker processes",
    "FORWARDED_ALLOW_IPS": "whose proxy headers uvicorn trusts",
    "CELERY_WORKER_CONCURRENCY": "celery worker's --concurrency",
    "FLOWER_BASIC_AUTH": "Flower's basic auth in docker-compose.yml",
}


def env_file(path: Path) -> dict[str, str]:
    """NAME → value of a dotenv file; a commented-out `# NAME=value` counts as documented."""
    found = {}
    for line in path.read_text().splitlines():
        match = re.fullmatch(r"#?\s*([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            found[match.group(1)] = match.group(2)
    return found


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
    assert argv[argv.index("--appendfsync") + 1] == "always"  # no acknowledged event is lost
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
