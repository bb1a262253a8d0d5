"""The README's walk-through matches the files: the scopes and events it tells an operator to
expect are the manifest's, and the Heroku .profile it gives really fixes the add-on's REDIS_URL."""

from __future__ import annotations

import os
import re
import ssl
import subprocess
from pathlib import Path

from jobs.config import RedisSettings
from jobs.slack.events import HANDLERS
from tests.conftest import ROOT
from tests.deploy.helpers import manifest


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
