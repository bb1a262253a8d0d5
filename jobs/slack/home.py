"""The App Home tab: the schedules a person may see, in their own timezone, with the buttons
they may use. Published with `views.publish` when they open it and after each of their clicks.

Who sees what: a schedule whose channels include one the person is a member of (admins see
all); who may run, pause and resume: `commands.may_operate`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import redis
from slack_sdk import WebClient

from jobs.config import USER_ID, Settings
from jobs.errors import DigestsError
from jobs.scheduling import status
from jobs.scheduling.file import schedules_file
from jobs.scheduling.slots import Schedule
from jobs.slack.api import call, pages
from jobs.slack.commands import may_operate
from jobs.slack.directory import Directory
from jobs.slack.mrkdwn import escape

logger = logging.getLogger(__name__)

# A Home tab holds at most 100 blocks: a header, a context, then 3 blocks per schedule.
MAX_SCHEDULES = 30
Block = dict[str, Any]


def publish(settings: Settings, web: WebClient, cache: redis.Redis, user: str) -> int:
    """Publish `user`'s Home tab; how many schedules it shows."""
    loaded = schedules_file(settings.schedules_file).read()
    shown = {row["name"]: row for row in status.read(cache, loaded, datetime.now(UTC))["schedules"]}
    visible = visible_to(web, cache, settings, user, list(loaded.schedules.values()))
    zone = viewer_zone(web, user)
    view = home_view(
        [
            (
                schedule,
                shown[schedule.name],
                may_operate(schedule, user, settings),
                may_preview(web, cache, settings, user, schedule),
            )
            for schedule in visible
        ],
        zone,
        loaded.errors,
    )
    call(web, "views.publish", user_id=user, view=view)
    return len(visible)


def visible_to(
    web: WebClient, cache: redis.Redis, settings: Settings, user: str, schedules: list[Schedule]
) -> list[Schedule]:
    """The schedules one of whose channels `user` is in; every schedule for an admin."""
    if user in settings.admin_users:
        return schedules
    member = Membership(web, cache, user)
    return [s for s in schedules if any(member.of(ref) for ref in s.channels)]


class Membership:
    """Whether one person is in each channel asked about, each asked of Slack once."""

    def __init__(self, web: WebClient, cache: redis.Redis, user: str) -> None:
        self.web, self.directory, self.user = web, Directory(web, cache), user
        self.known: dict[str, bool] = {}

    def of(self, ref: str) -> bool:
        if ref not in self.known:
            try:
                channel = self.directory.channel_id(ref)
                self.known[ref] = any(
                    self.user in page["members"]
                    for page in pages(
                        self.web, "conversations.members", channel=channel, limit=1000
                    )
                )
            except DigestsError as error:  # a channel the bot cannot see shows no one in it
                logger.info("home: cannot list the members of %s: %s", ref, error)
                self.known[ref] = False
        return self.known[ref]


def may_preview(
    web: WebClient, cache: redis.Redis, settings: Settings, user: str, schedule: Schedule
) -> bool:
    """Whoever sees a schedule may preview it, but a private channel's digest goes only to its
    members, admins included."""
    member = Membership(web, cache, user)
    directory = Directory(web, cache)
    for ref in schedule.channels:
        try:
            private = call(web, "conversations.info", channel=directory.channel_id(ref))[
                "channel"
            ].get("is_private")
        except DigestsError:
            return False
        if private and not member.of(ref):
            return False
    return user in settings.admin_users or any(member.of(ref) for ref in schedule.channels)


def viewer_zone(web: WebClient, user: str) -> ZoneInfo:
    """The person's own timezone (`users.info`), UTC when Slack does not say."""
    try:
        name = call(web, "users.info", user=user)["user"].get("tz") or "UTC"
        return ZoneInfo(str(name))
    except (DigestsError, ZoneInfoNotFoundError, ValueError, KeyError):
        return ZoneInfo("UTC")


def home_view(
    rows: list[tuple[Schedule, dict[str, Any], bool, bool]],
    zone: ZoneInfo,
    errors: Sequence[str],
) -> dict[str, Any]:
    """The Home tab: each schedule's title, when in words, next slot in `zone`, last outcome,
    pause, and the buttons its viewer may use."""
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Slack Digests"}},
        context(f"Times in your timezone, {zone.key}."),
    ]
    if not rows:
        blocks.append(section("No schedule covers a channel you are in."))
    for schedule, row, operable, previewable in rows[:MAX_SCHEDULES]:
        blocks += schedule_blocks(schedule, row, operable, previewable, zone)
    if len(rows) > MAX_SCHEDULES:
        blocks.append(context(f"+{len(rows) - MAX_SCHEDULES} more on the status page."))
    if errors:
        blocks.append(context(":warning: The schedules file has errors; the last good one runs."))
    return {"type": "home", "blocks": blocks}


def schedule_blocks(
    schedule: Schedule, row: dict[str, Any], operable: bool, previewable: bool, zone: ZoneInfo
) -> list[Block]:
    upcoming = "disabled"
    if row["next"]:
        upcoming = "next " + datetime.fromisoformat(row["next"][0]["utc"]).astimezone(
            zone
        ).strftime("%a %d %b %H:%M")
    lines = [
        f"*{escape(schedule.title)}*",
        f"{escape(status.in_words(schedule.cron))} ({schedule.timezone}) · {upcoming}",
        f"Last: {escape(status.outcome(row))}",
    ]
    held = row.get("paused")
    if held:
        until = f" until {held['until']}" if held.get("until") else ""
        who = f"<@{held['who']}>" if USER_ID.fullmatch(held["who"]) else escape(held["who"])
        lines.append(f":double_vertical_bar: Paused by {who}{until}")
    blocks = [section("\n".join(lines))]
    elements = [button("Preview to me", "digest_preview", schedule.name)] if previewable else []
    if operable and schedule.enabled:
        toggle = ("Resume", "digest_resume") if held else ("Pause", "digest_pause")
        elements = [
            button("Run now", "digest_run", schedule.name, "primary"),
            *elements,
            button(*toggle, schedule.name),
        ]
    if elements:
        block_id = f"schedule:{schedule.name}"
        blocks.append({"type": "actions", "block_id": block_id, "elements": elements})
    blocks.append({"type": "divider"})
    return blocks


def button(text: str, action_id: str, value: str, style: str | None = None) -> Block:
    shown: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": value,
    }
    return {**shown, "style": style} if style else shown


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}
