"""Names in Slack: channel `#names` to IDs and back, people's display names, permalinks.

Resolved names are cached in Redis for an hour, so a digest costs a handful of Web API calls
whatever the number of messages, and many digests in a row cost almost none. The cache is kept
per workspace: a new `SLACK_BOT_TOKEN` for another workspace on the same Redis reads its own names.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

import redis
from slack_sdk import WebClient

from jobs import keys
from jobs.connections import text
from jobs.errors import PermanentError
from jobs.slack.api import call, pages

CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{6,}")
PAGE = 999
# Past this many unknown people, one paged `users.list` is cheaper than a `users.info` each.
USERS_INFO_LIMIT = 20


@dataclass(frozen=True)
class Team:
    """The workspace a token belongs to, as `auth.test` says."""

    id: str
    url: str  # with a trailing '/': a permalink is `{url}archives/{channel}/p{ts without '.'}`


# A token belongs to one workspace for its life: ask once per process. Keyed by the API's URL
# and a hash of the token, so that no token is kept anywhere but in its client.
TEAMS: dict[tuple[str, str], Team] = {}


def team_of(client: WebClient) -> Team:
    """The workspace of `client`'s token, from `auth.test` the first time this process asks."""
    key = (client.base_url, hashlib.sha256((client.token or "").encode()).hexdigest())
    found = TEAMS.get(key)
    if found is None:
        answer = call(client, "auth.test")
        url = str(answer["url"])
        found = TEAMS[key] = Team(str(answer["team_id"]), url if url.endswith("/") else url + "/")
    return found


def display_name(user: dict[str, object]) -> str:
    profile = user.get("profile")
    profile = profile if isinstance(profile, dict) else {}
    for name in (profile.get("display_name"), profile.get("real_name"), user.get("name")):
        if isinstance(name, str) and name:
            return name
    return str(user.get("id"))


class Directory:
    def __init__(self, client: WebClient, cache: redis.Redis) -> None:
        self.client = client
        self.cache = cache

    def _cached(self, kind: str, names: Iterable[str]) -> dict[str, str]:
        wanted = list(names)
        if not wanted:
            return {}
        team = team_of(self.client).id
        values = self.cache.mget([keys.directory(team, kind, name) for name in wanted])
        return {
            name: text(value)
            for name, value in zip(wanted, values, strict=True)
            if value is not None
        }

    def _remember(self, kind: str, mapping: dict[str, str]) -> None:
        # One key per name, each with its own TTL, so no entry outlives the hour.
        team = team_of(self.client).id
        with self.cache.pipeline(transaction=False) as pipe:
            for name, value in mapping.items():
                pipe.set(keys.directory(team, kind, name), value, ex=keys.DIRECTORY_TTL)
            pipe.execute()

    def channel_id(self, ref: str) -> str:
        """The ID of `C0123ABCD`, `#eng` or `eng`."""
        if CHANNEL_ID.fullmatch(ref):
            return ref
        name = ref.removeprefix("#")
        found = self._cached("channels", [f"#{name}"]).get(f"#{name}")
        if found is None:
            self._load_channels()
            found = self._cached("channels", [f"#{name}"]).get(f"#{name}")
        if found is None:
            raise PermanentError(f"there is no channel #{name} that the app can see")
        return found

    def channel_names(self, ids: Iterable[str]) -> dict[str, str]:
        """Each channel's name, without '#'."""
        ids = list(ids)
        names = self._cached("channels", ids)
        for channel in (c for c in ids if c not in names):
            info = call(self.client, "conversations.info", channel=channel)["channel"]
            names[channel] = str(info.get("name") or channel)
            self._remember("channels", {channel: names[channel], f"#{names[channel]}": channel})
        return names

    def _load_channels(self) -> None:
        mapping: dict[str, str] = {}
        for page in pages(
            self.client,
            "conversations.list",
            types="public_channel,private_channel",
            exclude_archived=True,
            limit=PAGE,
        ):
            for channel in page["channels"]:
                mapping[f"#{channel['name']}"] = channel["id"]
                mapping[channel["id"]] = channel["name"]
        self._remember("channels", mapping)

    def user_names(self, ids: Iterable[str]) -> dict[str, str]:
        """Display names of these user IDs; unknown IDs stay as they are."""
        ids = sorted(set(ids))
        names = self._cached("users", ids)
        missing = [user for user in ids if user not in names]
        if len(missing) > USERS_INFO_LIMIT:
            self._load_users()
            names = self._cached("users", ids)
        else:
            for user in missing:
                try:
                    info = call(self.client, "users.info", user=user)["user"]
                except PermanentError:  # a deleted or foreign user keeps their ID
                    continue
                names[user] = display_name(info)
                self._remember("users", {user: names[user]})
        return {user: names.get(user, user) for user in ids}

    def _load_users(self) -> None:
        mapping: dict[str, str] = {}
        for page in pages(self.client, "users.list", limit=PAGE):
            mapping.update({user["id"]: display_name(user) for user in page["members"]})
        self._remember("users", mapping)

    def permalink_base(self) -> str:
        """The workspace's URL: a permalink is `{base}archives/{channel}/p{ts without '.'}`."""
        return team_of(self.client).url


def permalink(base: str, channel: str, ts: str, thread: str | None = None) -> str:
    """Slack's link to a message; a reply's opens in its thread."""
    link = f"{base}archives/{channel}/p{ts.replace('.', '')}"
    if thread and thread != ts:
        link += f"?thread_ts={thread}&cid={channel}"
    return link
