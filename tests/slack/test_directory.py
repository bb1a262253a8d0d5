"""Channel names resolved through the Web API and cached in Redis, per workspace."""

from __future__ import annotations

from dataclasses import replace

import redis
from slack_sdk import WebClient

from jobs.slack.directory import Directory
from sandbox.slack import SlackSimulator
from sandbox.workspace import generate

# A database of its own: every key in it is this test's.
DB = 11


def test_a_new_workspace_on_the_same_redis_resolves_its_own_channels(redis_url: str) -> None:
    redis_client = redis.Redis.from_url(
        redis_url.rsplit("/", 1)[0] + f"/{DB}", decode_responses=True
    )
    redis_client.flushdb()
    first = generate(seed=101, channels=2, messages=1)
    second = replace(generate(seed=202, channels=2, messages=1), bot_token="xoxb-second-ws-token")
    with SlackSimulator(first) as old, SlackSimulator(second) as new:
        assert old.channel_id("eng") != new.channel_id("eng")
        before = WebClient(token=old.token, base_url=old.url)
        assert Directory(before, redis_client).channel_id("#eng") == old.channel_id("eng")
        # SLACK_BOT_TOKEN now names another workspace; the cache of the first one still holds.
        after = WebClient(token=new.token, base_url=new.url)
        assert Directory(after, redis_client).channel_id("#eng") == new.channel_id("eng")
        assert Directory(after, redis_client).channel_names([new.channel_id("eng")]) == {
            new.channel_id("eng"): "eng"
        }
        assert Directory(after, redis_client).permalink_base() == "https://" + (
            f"{second.domain}.slack.com/"
        )
        assert new.calls["auth.test"] == 1  # once per token and process, not per lookup
    stored = [key for key in redis_client.scan_iter("digests:directory:*")]
    assert stored and not [key for key in stored if "xoxb" in key]
    assert all(f":{first.team_id}:" in k or f":{second.team_id}:" in k for k in stored)
    redis_client.close()
