"""A demo Slack workspace generated from a seed: the data the Slack simulator answers with.

Everything is in Slack's own shapes (users as `users.info` returns them, channels as
`conversations.info`, messages as `conversations.history`), with the awkward cases a digest must
survive: threads and broadcasts, joins, bot posts, edits, files, links, mentions and hostile text.
"""

from __future__ import annotations

import random
import re
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

Message = dict[str, Any]

# A fixed default window keeps `generate()` deterministic; the dev stack passes one ending now.
DEMO_END = datetime(2025, 1, 6, tzinfo=UTC)
DEMO_START = DEMO_END - timedelta(days=7)
BOT_TOKEN = "xoxb-sandbox-digests-bot-token"


@dataclass
class Workspace:
    """One team as the bot sees it; `messages` hold history (top-level posts and thread broadcasts,
    oldest first), `replies` each thread's replies by `(channel ID, thread_ts)`, oldest first."""

    team_id: str
    team_name: str
    domain: str
    bot_user_id: str
    bot_id: str
    bot_token: str
    users: list[dict[str, Any]]
    channels: list[dict[str, Any]]
    messages: dict[str, list[Message]]
    replies: dict[tuple[str, str], list[Message]]
    members: dict[str, list[str]] = field(default_factory=dict)  # channel ID → its people


def ts_string(micros: int) -> str:
    """Slack's message timestamp, "seconds.microseconds", from microseconds since the epoch."""
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def ts_micros(ts: str) -> int:
    """Microseconds since the epoch of a Slack timestamp ("1700000000.000100", "1700000000")."""
    seconds, _, fraction = ts.strip().partition(".")
    if not seconds.isdigit() or not (fraction == "" or fraction.isdigit()):
        raise ValueError(f"not a Slack timestamp: {ts!r}")
    return int(seconds) * 1_000_000 + int(fraction[:6].ljust(6, "0"))


def generate(
    seed: int = 0,
    *,
    channels: int = 8,
    messages: int = 300,
    start: datetime = DEMO_START,
    end: datetime = DEMO_END,
    stories: bool = True,
) -> Workspace:
    """A workspace of `channels` channels with `messages` history entries each, in [start, end),
    plus (with `stories`) each channel's scripted conversations (`STORIES`)."""
    templates = [CHANNELS[i] if i < len(CHANNELS) else extra_channel(i) for i in range(channels)]
    return Builder(seed, start, end, stories).build(templates, messages)


def big_channel(
    n: int, seed: int = 0, *, start: datetime = DEMO_START, end: datetime = DEMO_END
) -> Workspace:
    """A workspace with one channel of `n` history entries: the load for paging benchmarks."""
    return Builder(seed, start, end).build([("firehose", False, True, "Everything")], n)


# (name, is_private, bot is a member, purpose). "design" is the channel the bot was never invited
# to (`not_in_channel`); eng-digest and support-leads are where schedules.yaml delivers.
ChannelTemplate = tuple[str, bool, bool, str]
CHANNELS: tuple[ChannelTemplate, ...] = (
    ("general", False, True, "Company-wide announcements"),
    ("eng", False, True, "Engineering chatter"),
    ("support", False, True, "Customer questions and escalations"),
    ("design", False, False, "Design reviews"),
    ("leadership", True, True, "Leads only"),
    ("random", False, True, "Everything else"),
    ("eng-digest", False, True, "The weekly engineering digest"),
    ("support-leads", False, True, "Support leads"),
)


def extra_channel(index: int) -> ChannelTemplate:
    return (f"project-{index}", False, True, f"Project {index}")


HUMANS = (
    ("alice", "Alice Martin", "alice", "Europe/Berlin"),
    ("bob", "Bob Okafor", "bobo", "America/New_York"),
    ("carol", "Carol Nguyen", "", "America/Los_Angeles"),
    ("dmitri", "Dmitri Volkov", "dima", "Europe/Berlin"),
    ("emma", "Emma Schulz", "emma", "Europe/Berlin"),
    ("farid", "Farid Haddad", "", "Asia/Dubai"),
    ("grace", "Grace Lee", "gracie", "America/New_York"),
    ("hiro", "Hiro Tanaka", "hiro", "Asia/Tokyo"),
    ("ines", "Inês Costa", "ines", "Europe/Lisbon"),
    ("jamal", "Jamal Wright", "jamal", "America/Chicago"),
    ("kasia", "Kasia Nowak", "", "Europe/Warsaw"),
    ("liam", "Liam O'Brien", "liam", "Europe/Dublin"),
)
SERVICES = ("api", "billing", "search", "web", "worker", "auth", "exports")
STATEMENTS = (
    "Deployed {service} to staging, looks good so far",
    "The {service} dashboard shows p95 back under 200ms",
    "Pushed a fix for the flaky {service} test",
    "Customer reported slow {service} again, investigating",
    "Merged the {service} refactor :tada:",
    "Reminder: retro at 3pm today",
    "I'm out tomorrow afternoon, ping me before noon",
    "Standup notes are in the usual doc",
    "{service} error rate is back to normal after the rollback",
    "Lunch is here",
)
QUESTIONS = (
    "Does anyone know why the {service} build is red?",
    "Can someone review my PR for {service}?",
    "Who owns the {service} alerts now?",
    "Is the {service} migration still planned for this week?",
    "Any objections to raising the {service} timeout to 30s?",
)
REPLIES = (
    "On it",
    "Looks good to me :+1:",
    "I think <@{user}> knows",
    "Fixed in main",
    "Thanks!",
    "Same here",
    "Let's talk at standup",
    "Yes, still planned",
    "Not yet, tomorrow",
)
LINKS = (
    "PR is up: <https://github.com/acme/{service}/pull/{number}|PR #{number}>",
    "Runbook: <https://docs.example.com/{service}/runbook>",
    "Incident write-up <https://docs.example.com/incidents/{number}|INC-{number}> is ready",
    "Status page: <https://status.example.com/>",
)
# What users can put in front of a digest: pings, forged links, markup, as (posted by a bot, text).
# Slack sends the `&<>` people type as entities; bots can post them raw.
HOSTILE = (
    (False, "<!channel> the VPN password rotates today, read this now"),
    (False, "Your account is locked, sign in at <https://evil.example|bank> to fix it"),
    (False, "R&amp;D and Q&amp;A notes: 1 &lt; 2 &amp;&amp; 3 &gt; 2"),
    (False, "&lt;script&gt;alert('x')&lt;/script&gt;"),
    (True, "<script>alert(1)</script> Tom & Jerry <!here>"),
)
FILES = (
    ("q3-report.pdf", "Q3 report", "application/pdf", "pdf", "PDF"),
    ("screenshot.png", "Screenshot of the bug", "image/png", "png", "PNG"),
    ("export.csv", "Customer export", "text/csv", "csv", "CSV"),
)
# No check mark: on a message it means a decision or a thing done, which the stories say.
REACTIONS = ("+1", "eyes", "tada", "raised_hands", "heart", "joy")
# Kinds of history entry and their weights; reactions and edits are added on top.
KINDS = (
    ("plain", 46),
    ("question", 10),
    ("link", 8),
    ("mention", 8),
    ("thread", 8),
    ("file", 4),
    ("bot", 6),
    ("join", 4),
    ("leave", 1),
    ("broadcast", 2),
)
MAX_THREAD_SPAN = 2 * 86_400 * 1_000_000


class Builder:
    """Draws one workspace from a seeded random generator; every choice goes through `rng`."""

    def __init__(self, seed: int, start: datetime, end: datetime, stories: bool = False) -> None:
        if end <= start:
            raise ValueError(f"the window is empty: start {start} is not before end {end}")
        self.rng = random.Random(seed)
        self.start = int(start.timestamp() * 1_000_000)
        self.end = int(end.timestamp() * 1_000_000)
        self.used_ids: set[str] = set()
        self.team_id = self.ident("T")
        self.domain = "acme-sandbox"
        self.bot_user_id = self.ident("U")
        self.bot_id = self.ident("B")
        self.deploybot_id = self.ident("B")
        self.humans = [self.human(*person, end) for person in HUMANS]
        self.former = self.human("former", "Former Employee", "", "UTC", end, deleted=True)
        self.kinds = [kind for kind, _ in KINDS]
        self.weights = [weight for _, weight in KINDS]
        self.stories = stories

    def ident(self, prefix: str) -> str:
        """A Slack-looking ID (`U012AB3CD4E`), unique within this workspace."""
        while True:
            candidate = prefix + "".join(self.rng.choices(IDENT_CHARS, k=10))
            if candidate not in self.used_ids:
                self.used_ids.add(candidate)
                return candidate

    def build(self, templates: list[ChannelTemplate], per_channel: int) -> Workspace:
        channels, messages, replies, people = [], {}, {}, {}
        for template in templates:
            members = self.members(template[0])
            channel = self.channel(template, members)
            channels.append(channel)
            people[channel["id"]] = members
            generator = HistoryGenerator(self, members)
            history, threads = generator.fill(per_channel)
            if self.stories:
                history = generator.tell(history)
            messages[channel["id"]] = history
            replies.update({(channel["id"], ts): thread for ts, thread in threads.items()})
        return Workspace(
            team_id=self.team_id,
            team_name="Acme Corp (sandbox)",
            domain=self.domain,
            bot_user_id=self.bot_user_id,
            bot_id=self.bot_id,
            bot_token=BOT_TOKEN,
            users=[*self.humans, self.former, *self.bots()],
            channels=channels,
            messages=messages,
            replies=replies,
            members=people,
        )

    def human(
        self, name: str, real: str, display: str, tz: str, at: datetime, deleted: bool = False
    ) -> dict[str, Any]:
        offset = ZoneInfo(tz).utcoffset(at)
        profile = {
            "real_name": real,
            "real_name_normalized": real,
            "display_name": display,
            "display_name_normalized": display,
            "title": "",
            "image_48": f"https://avatars.example.com/{name}_48.png",
            "team": self.team_id,
        }
        return {
            "id": self.ident("U"),
            "team_id": self.team_id,
            "name": name,
            "deleted": deleted,
            "real_name": real,
            "tz": tz,
            "tz_offset": int(offset.total_seconds()) if offset else 0,
            "is_admin": name == "alice",
            "is_owner": name == "alice",
            "is_bot": False,
            "is_app_user": False,
            "updated": self.start // 1_000_000,
            "profile": profile,
        }

    def bots(self) -> list[dict[str, Any]]:
        """Our own bot user and an old integration that posts `bot_message`s."""
        ours = self.bot_user("digests", "Slack Digests", self.bot_user_id, self.bot_id)
        return [ours, self.bot_user("deploybot", "Deploy Bot", self.ident("U"), self.deploybot_id)]

    def bot_user(self, name: str, real: str, user_id: str, bot_id: str) -> dict[str, Any]:
        profile = {"real_name": real, "display_name": "", "bot_id": bot_id, "team": self.team_id}
        return {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "deleted": False,
            "real_name": real,
            "tz": "UTC",
            "tz_offset": 0,
            "is_bot": True,
            "is_app_user": False,
            "updated": self.start // 1_000_000,
            "profile": profile,
        }

    def members(self, name: str) -> list[str]:
        if name == "general":
            return [user["id"] for user in self.humans] + [self.former["id"]]
        people = self.rng.sample(self.humans, self.rng.randint(4, 9))
        return [user["id"] for user in people]

    def channel(self, template: ChannelTemplate, members: list[str]) -> dict[str, Any]:
        name, private, member, purpose = template
        created = self.start // 1_000_000 - self.rng.randint(30, 700) * 86_400
        creator = members[0]
        about = {"creator": creator, "last_set": created}
        return {
            "id": self.ident("C"),
            "name": name,
            "name_normalized": name,
            "is_channel": True,
            "is_group": False,
            "is_im": False,
            "is_mpim": False,
            "is_private": private,
            "is_archived": False,
            "is_general": name == "general",
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "is_member": member,
            "created": created,
            "creator": creator,
            "context_team_id": self.team_id,
            "topic": {"value": "", **about},
            "purpose": {"value": purpose, **about},
            "previous_names": [],
            "num_members": len(members) + int(member),
        }


IDENT_CHARS = string.ascii_uppercase + string.digits


MARKUP = re.compile(r"<([^>|]+)(?:\|([^>]*))?>")


def rich_text(text: str, block_id: str) -> list[dict[str, Any]]:
    """The `rich_text` block Slack attaches to what a person types, as history returns it."""
    elements: list[dict[str, Any]] = []
    at = 0
    for found in MARKUP.finditer(text):
        if found.start() > at:
            elements.append({"type": "text", "text": text[at : found.start()]})
        target, label = found.group(1), found.group(2)
        if target.startswith("@"):
            elements.append({"type": "user", "user_id": target[1:]})
        elif target.startswith("!"):
            elements.append({"type": "broadcast", "range": target[1:]})
        else:
            elements.append({"type": "link", "url": target, **({"text": label} if label else {})})
        at = found.end()
    if at < len(text):
        elements.append({"type": "text", "text": text[at:]})
    section = {"type": "rich_text_section", "elements": elements}
    return [{"type": "rich_text", "block_id": block_id, "elements": [section]}]


def summarize_thread(parent: Message, replies: list[Message]) -> None:
    """Stamp a parent with what Slack shows of its thread: count, who replied, the latest reply."""
    users = list(dict.fromkeys(reply.get("user") or reply.get("bot_id", "") for reply in replies))
    parent.update(
        thread_ts=parent["ts"],
        reply_count=len(replies),
        reply_users_count=len(users),
        latest_reply=replies[-1]["ts"],
        reply_users=users,
        is_locked=False,
        subscribed=False,
    )


class HistoryGenerator:
    """One channel's history and threads, drawn in time order so replies follow their parents."""

    def __init__(self, builder: Builder, members: list[str]) -> None:
        self.b = builder
        self.rng = builder.rng
        self.members = members
        self.used: set[int] = set()
        self.parents: dict[str, Message] = {}
        self.threads: dict[str, list[Message]] = {}
        self.last_parent: Message | None = None
        self.makers: dict[str, Callable[[int], Message]] = {
            "plain": self.plain,
            "question": self.question,
            "link": self.link,
            "mention": self.mention,
            "thread": self.thread,
            "file": self.file,
            "bot": self.deploy,
            "join": self.join,
            "leave": self.leave,
            "broadcast": self.broadcast,
        }

    def fill(self, count: int) -> tuple[list[Message], dict[str, list[Message]]]:
        """`count` history entries, oldest first, and each thread's replies by thread_ts."""
        keys = sorted(self.rng.sample(range(self.b.start, self.b.end), count))
        self.used.update(keys)
        places = self.rng.sample(range(count), min(len(HOSTILE), count))
        hostile = dict(zip(places, HOSTILE, strict=False))
        kinds = self.rng.choices(self.b.kinds, self.b.weights, k=count)
        history = []
        for index, key in enumerate(keys):
            if index in hostile:
                by_bot, text = hostile[index]
                history.append(self.bot_post(key, text) if by_bot else self.said(key, text))
            else:
                history.append(self.makers[kinds[index]](key))
        for ts, replies in self.threads.items():
            replies.sort(key=lambda reply: ts_micros(reply["ts"]))
            summarize_thread(self.parents[ts], replies)
        return history, self.threads

    def tell(self, history: list[Message]) -> list[Message]:
        """The history with the channel's `STORIES` told in it, in time order."""
        span = self.b.end - self.b.start
        people = self.members
        told = []
        for at, by, text, reactions, replies in STORIES:
            low = self.b.start + int(span * at)
            key = self.free_key(low, min(low + span // 20, self.b.end)) or low
            message = self.said(key, text.format(*people), people[by % len(people)])
            message["reactions"] = self.marks(reactions)
            if not reactions:
                del message["reactions"]
            if replies:
                thread = []
                step = min(600_000_000, (self.b.end - key) // (len(replies) + 1))  # in the window
                for offset, (who, said, marks) in enumerate(replies, start=1):
                    reply = self.reply(message, key + offset * step)
                    reply.update(
                        user=people[who % len(people)], text=said, reactions=self.marks(marks)
                    )
                    reply["blocks"] = rich_text(said, f"{key + offset:06x}"[-6:])
                    if not marks:
                        del reply["reactions"]
                    thread.append(reply)
                self.threads[message["ts"]] = thread
                self.parents[message["ts"]] = message
                summarize_thread(message, thread)
            told.append(message)
        return sorted([*history, *told], key=lambda message: ts_micros(message["ts"]))

    def marks(self, names: tuple[str, ...]) -> list[dict[str, Any]]:
        users = self.members[:3]
        return [{"name": name, "users": users, "count": len(users)} for name in names]

    def words(self, template: str) -> str:
        return template.format(
            service=self.rng.choice(SERVICES),
            number=self.rng.randint(100, 999),
            user=self.rng.choice(self.members),
        )

    def said(self, key: int, text: str, user: str | None = None) -> Message:
        """A person's message, sometimes with reactions, sometimes edited."""
        user = user or self.rng.choice(self.members)
        message: Message = {
            "user": user,
            "type": "message",
            "ts": ts_string(key),
            "client_msg_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "text": text,
            "team": self.b.team_id,
            "blocks": rich_text(text, f"{self.rng.getrandbits(24):06x}"),
        }
        if self.rng.random() < 0.2:
            message["reactions"] = self.reactions()
        if self.rng.random() < 0.06:
            edited = min(key + self.rng.randint(10**6, 3600 * 10**6), self.b.end - 1)
            message["edited"] = {"user": user, "ts": ts_string(edited)}
        return message

    def reactions(self) -> list[dict[str, Any]]:
        names = self.rng.sample(REACTIONS, self.rng.randint(1, 3))
        chosen = [self.rng.sample(self.members, self.rng.randint(1, 4)) for _ in names]
        return [
            {"name": name, "users": users, "count": len(users)}
            for name, users in zip(names, chosen, strict=True)
        ]

    def plain(self, key: int) -> Message:
        return self.said(key, self.words(self.rng.choice(STATEMENTS)))

    def question(self, key: int) -> Message:
        message = self.said(key, self.words(self.rng.choice(QUESTIONS)))
        if self.rng.random() < 0.6:  # the rest stay unanswered
            self.start_thread(message, key)
        return message

    def link(self, key: int) -> Message:
        return self.said(key, self.words(self.rng.choice(LINKS)))

    def mention(self, key: int) -> Message:
        statement = self.words(self.rng.choice(STATEMENTS))
        return self.said(key, f"<@{self.rng.choice(self.members)}> {statement}")

    def thread(self, key: int) -> Message:
        message = self.plain(key)
        self.start_thread(message, key)
        return message

    def start_thread(self, parent: Message, key: int) -> None:
        last = min(key + MAX_THREAD_SPAN, self.b.end)
        replies = []
        for _ in range(self.rng.randint(1, 6)):
            reply_key = self.free_key(key + 1, last)
            if reply_key is not None:
                replies.append(self.reply(parent, reply_key))
        if replies:
            self.threads[parent["ts"]] = replies
            self.parents[parent["ts"]] = parent
            self.last_parent = parent

    def free_key(self, low: int, high: int) -> int | None:
        """An unused timestamp in [low, high), or None when the span is (nearly) full."""
        for _ in range(8):
            if high <= low:
                return None
            key = self.rng.randrange(low, high)
            if key not in self.used:
                self.used.add(key)
                return key
        return None

    def reply(self, parent: Message, key: int) -> Message:
        reply = self.said(key, self.words(self.rng.choice(REPLIES)))
        reply["thread_ts"] = parent["ts"]
        reply["parent_user_id"] = parent["user"]
        return reply

    def broadcast(self, key: int) -> Message:
        """A reply also sent to the channel: in history and in its thread."""
        parent = self.last_parent
        if parent is None:
            return self.plain(key)
        reply = self.reply(parent, key)
        reply["subtype"] = "thread_broadcast"
        reply["root"] = {field: parent[field] for field in ("type", "user", "text", "ts")}
        self.threads[parent["ts"]].append(reply)
        return reply

    def file(self, key: int) -> Message:
        user = self.rng.choice(self.members)
        name, title, mimetype, filetype, pretty = self.rng.choice(FILES)
        file_id = self.b.ident("F")
        seconds = key // 1_000_000
        shared = {
            "id": file_id,
            "created": seconds,
            "timestamp": seconds,
            "name": name,
            "title": title,
            "mimetype": mimetype,
            "filetype": filetype,
            "pretty_type": pretty,
            "user": user,
            "size": self.rng.randint(2_000, 3_000_000),
            "mode": "hosted",
            "is_external": False,
            "is_public": True,
            "url_private": f"https://files.slack.com/files-pri/{self.b.team_id}-{file_id}/{name}",
            "permalink": f"https://{self.b.domain}.slack.com/files/{user}/{file_id}/{name}",
        }
        message = self.said(key, self.rng.choice(("", "Here you go", "Latest numbers")), user)
        message.update(files=[shared], upload=True, display_as_bot=False)
        return message

    def deploy(self, key: int) -> Message:
        version = f"v1.{self.rng.randint(0, 40)}.{self.rng.randint(0, 9)}"
        return self.bot_post(key, f"Deployed {self.rng.choice(SERVICES)} {version} to production")

    def bot_post(self, key: int, text: str) -> Message:
        """A classic integration's post: no user, a `bot_id` and a display name."""
        return {
            "type": "message",
            "subtype": "bot_message",
            "bot_id": self.b.deploybot_id,
            "username": "deploybot",
            "text": text,
            "ts": ts_string(key),
        }

    def join(self, key: int) -> Message:
        return self.membership(key, "channel_join", "joined")

    def leave(self, key: int) -> Message:
        return self.membership(key, "channel_leave", "left")

    def membership(self, key: int, subtype: str, verb: str) -> Message:
        user = self.rng.choice(self.members)
        return {
            "type": "message",
            "subtype": subtype,
            "user": user,
            "text": f"<@{user}> has {verb} the channel",
            "ts": ts_string(key),
        }


# What a digest should find in every channel, told at fixed points of the window (its fraction),
# by the channel's members by position: (when, who, text, reactions, replies as (who, text,
# reactions)). A decision, action items open and done, a conversation that ends fixed, a link
# shared three times, and a topic (the exports migration) that rises in the window's second half.
Reply = tuple[int, str, tuple[str, ...]]
STORIES: tuple[tuple[float, int, str, tuple[str, ...], tuple[Reply, ...]], ...] = (
    (
        0.30,
        0,
        "The search index is returning stale results for some customers, anyone seen this?",
        ("eyes", "+1", "joy"),
        (
            (1, "Seeing it too, started after Tuesday's deploy", ()),
            (
                2,
                "Could be the TTL change in <https://github.com/acme/search/pull/412|PR #412>",
                ("+1",),
            ),
            (4, "Two more tickets about it this morning", ()),
            (5, "I can reproduce it on staging", ()),
            (6, "Paging the search on-call", ()),
            (
                3,
                "Rolled back the TTL and reindexed: fixed, results are fresh again",
                ("tada", "raised_hands"),
            ),
            (0, "Thanks all!", ()),
        ),
    ),
    (
        0.35,
        1,
        "Design doc: <https://docs.example.com/exports/migration|exports migration>",
        (),
        (),
    ),
    (
        0.40,
        2,
        "TODO: rotate the staging certificates before they expire",
        (),
        ((2, "Done, rotated them this morning", ()),),
    ),
    (
        0.55,
        0,
        "Decision: we'll go with Postgres for the exports migration, not a new document store",
        ("white_check_mark", "+1"),
        ((1, "Agreed, less to run", ()),),
    ),
    (0.60, 3, "Exports migration dry run went well, 3 tables left to move", (), ()),
    (
        0.65,
        1,
        "Reminder, the exports migration doc: <https://docs.example.com/exports/migration>",
        (),
        (),
    ),
    (
        0.70,
        0,
        "<@{1}> can you update the billing runbook for the exports migration by Friday?",
        (),
        (),
    ),
    (0.75, 2, "Exports migration: moved the invoices table, checksums match", ("tada",), ()),
    (0.80, 3, "Have we decided on the exports migration cutover date?", (), ()),
    (0.85, 1, "I'll write the exports migration rollback plan by Thursday", (), ()),
    (
        0.90,
        2,
        "Link again for the exports migration review: <https://docs.example.com/exports/migration>",
        (),
        (),
    ),
)
