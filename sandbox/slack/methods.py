"""The Web API methods a digest calls, answered from a workspace in Slack's own shapes and
errors, with every post kept so tests can see what was delivered."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sandbox.slack.arguments import Args, SlackError, flag_arg, json_arg, page_of, ts_arg
from sandbox.slack.history import History
from sandbox.workspace import Message, Workspace, summarize_thread, ts_micros, ts_string

REPLIES_LIMIT = (1000, 1000)  # (default, maximum) page sizes, as Slack documents them
LIST_LIMIT = (100, 1000)
USERS_LIMIT = (0, 1000)  # no limit: every user
MAX_BLOCKS = 50
MAX_TEXT = 40_000


class Slack:
    """The Web API methods over one workspace's state; each takes the call's arguments and
    answers a dict or pre-serialized bytes, or raises `SlackError`."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.channels = {channel["id"]: channel for channel in workspace.channels}
        self.users = {user["id"]: user for user in workspace.users}
        self.histories = {cid: History(messages) for cid, messages in workspace.messages.items()}
        self.threads = {key: list(replies) for key, replies in workspace.replies.items()}
        # (channel, reply ts) → its thread_ts, to find replies by ts for permalinks
        self.in_thread = {
            (cid, reply["ts"]): thread_ts
            for (cid, thread_ts), replies in workspace.replies.items()
            for reply in replies
        }
        self.posted: list[dict[str, Any]] = []
        self.direct: list[dict[str, Any]] = []  # direct messages to people, apart from `posted`
        self.views: dict[str, list[dict[str, Any]]] = {}  # user → the Home tabs published, in order
        self.opened: list[dict[str, Any]] = []  # modals opened, with their trigger_id
        self.last_post = 0
        self.methods: dict[str, Callable[[Args], dict[str, Any] | bytes]] = {
            "auth.test": self.auth_test,
            "conversations.list": self.conversations_list,
            "conversations.info": self.conversations_info,
            "conversations.history": self.conversations_history,
            "conversations.replies": self.conversations_replies,
            "users.info": self.users_info,
            "users.list": self.users_list,
            "chat.postMessage": self.chat_post_message,
            "chat.getPermalink": self.chat_get_permalink,
            "conversations.members": self.conversations_members,
            "views.publish": self.views_publish,
            "views.open": self.views_open,
        }

    def channel(self, args: Args, by_name: bool = False) -> dict[str, Any]:
        """The channel a call names; private channels the bot is not in do not exist for it."""
        ref = str(args.get("channel") or "")
        found = self.channels.get(ref)
        if found is None and by_name:
            name = ref.removeprefix("#")
            found = next((c for c in self.channels.values() if c["name"] == name), None)
        if found is None or (found["is_private"] and not found["is_member"]):
            raise SlackError("channel_not_found")
        return found

    def member_channel(self, args: Args, by_name: bool = False) -> dict[str, Any]:
        channel = self.channel(args, by_name)
        if not channel["is_member"]:
            raise SlackError("not_in_channel")
        return channel

    def auth_test(self, args: Args) -> dict[str, Any]:
        ws = self.workspace
        return {
            "ok": True,
            "url": f"https://{ws.domain}.slack.com/",
            "team": ws.team_name,
            "user": self.users[ws.bot_user_id]["name"],
            "team_id": ws.team_id,
            "user_id": ws.bot_user_id,
            "bot_id": ws.bot_id,
            "is_enterprise_install": False,
        }

    def conversations_list(self, args: Args) -> dict[str, Any]:
        types = set(str(args.get("types") or "public_channel").split(","))
        archived = not flag_arg(args, "exclude_archived")
        visible = [
            channel
            for channel in self.channels.values()
            if ("private_channel" if channel["is_private"] else "public_channel") in types
            and (channel["is_member"] or not channel["is_private"])
            and (archived or not channel["is_archived"])
        ]
        channels, cursor = page_of(visible, args, LIST_LIMIT, "channel")
        return {"ok": True, "channels": channels, "response_metadata": {"next_cursor": cursor}}

    def conversations_info(self, args: Args) -> dict[str, Any]:
        return {"ok": True, "channel": self.channel(args)}

    def conversations_history(self, args: Args) -> bytes:
        return self.histories[self.member_channel(args)["id"]].page(args)

    def conversations_replies(self, args: Args) -> dict[str, Any]:
        """The parent first on every page, as Slack does, then its replies oldest first."""
        channel = self.member_channel(args)["id"]
        key = ts_arg(args, "ts", "thread_not_found")
        parent = None if key is None else self.histories[channel].get(key)
        if parent is None:
            raise SlackError("thread_not_found")
        replies, cursor = page_of(
            self.threads.get((channel, parent["ts"]), []), args, REPLIES_LIMIT, "reply"
        )
        messages = [parent, *replies]
        if not flag_arg(args, "include_all_metadata"):
            messages = [{k: v for k, v in m.items() if k != "metadata"} for m in messages]
        return {
            "ok": True,
            "messages": messages,
            "has_more": bool(cursor),
            "response_metadata": {"next_cursor": cursor},
        }

    def users_info(self, args: Args) -> dict[str, Any]:
        user = self.users.get(str(args.get("user") or ""))
        if user is None:
            raise SlackError("user_not_found")
        return {"ok": True, "user": user}

    def users_list(self, args: Args) -> dict[str, Any]:
        members, cursor = page_of(list(self.users.values()), args, USERS_LIMIT, "user")
        return {
            "ok": True,
            "members": members,
            "cache_ts": int(time.time()),
            "response_metadata": {"next_cursor": cursor},
        }

    def conversations_members(self, args: Args) -> dict[str, Any]:
        channel = self.channel(args)
        people = list(self.workspace.members.get(channel["id"], []))
        if channel["is_member"]:
            people.append(self.workspace.bot_user_id)
        members, cursor = page_of(people, args, USERS_LIMIT, "member")
        return {"ok": True, "members": members, "response_metadata": {"next_cursor": cursor}}

    def views_publish(self, args: Args) -> dict[str, Any]:
        user = str(args.get("user_id") or "")
        if user not in self.users:
            raise SlackError("user_not_found")
        view = json_arg(args, "view", "invalid_arguments")
        if not isinstance(view, dict) or view.get("type") != "home":
            raise SlackError("invalid_arguments")
        if len(view.get("blocks") or []) > 100:
            raise SlackError("invalid_blocks")
        self.views.setdefault(user, []).append(view)
        return {"ok": True, "view": {**view, "id": f"V{user[1:]}"}}

    def views_open(self, args: Args) -> dict[str, Any]:
        trigger = str(args.get("trigger_id") or "")
        if not trigger:
            raise SlackError("invalid_trigger_id")
        view = json_arg(args, "view", "invalid_arguments")
        if not isinstance(view, dict) or view.get("type") != "modal":
            raise SlackError("invalid_arguments")
        self.opened.append({"trigger_id": trigger, "view": view})
        return {"ok": True, "view": {**view, "id": f"VM{len(self.opened):08d}"}}

    def dm_channel(self, user: str) -> str:
        """The bot's direct message channel with a person: posting to a user ID opens it."""
        channel = f"D{user[1:]}"
        self.histories.setdefault(channel, History([]))
        return channel

    def chat_post_message(self, args: Args) -> dict[str, Any]:
        ref = str(args.get("channel") or "")
        if ref in self.users:
            channel = self.dm_channel(ref)
        else:
            channel = self.member_channel(args, by_name=True)["id"]
        message = self.bot_message(args)
        thread = ts_arg(args, "thread_ts", "thread_not_found")
        if thread is not None:
            self.reply(channel, thread, message, flag_arg(args, "reply_broadcast"))
        else:
            self.histories[channel].add(message)
        parsed: Args = {key: message[key] for key in ("blocks", "metadata") if key in message}
        sent = {**args, **parsed, "channel_id": channel, "ts": message["ts"]}
        (self.direct if ref in self.users else self.posted).append(sent)
        return {"ok": True, "channel": channel, "ts": message["ts"], "message": message}

    def bot_message(self, args: Args) -> Message:
        blocks = json_arg(args, "blocks", "invalid_blocks_format")
        metadata = json_arg(args, "metadata", "invalid_metadata_format")
        text = str(args.get("text") or "")[:MAX_TEXT]
        if not text and not blocks and not args.get("attachments"):
            raise SlackError("no_text")
        if blocks is not None and not isinstance(blocks, list):
            raise SlackError("invalid_blocks_format")
        if blocks and len(blocks) > MAX_BLOCKS:
            raise SlackError("invalid_blocks")
        if metadata is not None and not (
            isinstance(metadata, dict)
            and isinstance(metadata.get("event_type"), str)
            and isinstance(metadata.get("event_payload"), dict)
        ):
            raise SlackError("invalid_metadata_format")
        ws = self.workspace
        message: Message = {
            "type": "message",
            "user": ws.bot_user_id,
            "bot_id": ws.bot_id,
            "text": text,
            "ts": self.next_ts(),
            "team": ws.team_id,
            "bot_profile": {"id": ws.bot_id, "name": "Slack Digests", "team_id": ws.team_id},
        }
        if blocks:
            message["blocks"] = blocks
        if metadata:
            message["metadata"] = metadata
        return message

    def next_ts(self) -> str:
        """Now, made unique: two posts in one microsecond still get distinct timestamps."""
        self.last_post = max(time.time_ns() // 1000, self.last_post + 1)
        return ts_string(self.last_post)

    def reply(self, channel: str, thread: int, message: Message, broadcast: bool) -> None:
        """Post into a thread: kept for `conversations.replies`, and in history when broadcast."""
        history = self.histories[channel]
        parent = history.get(thread)
        if parent is not None and parent.get("thread_ts", parent["ts"]) != parent["ts"]:
            parent = history.get(ts_micros(parent["thread_ts"]))  # a broadcast: reply to its root
        if parent is None:
            raise SlackError("thread_not_found")
        message.update(
            thread_ts=parent["ts"], parent_user_id=parent.get("user", parent.get("bot_id"))
        )
        replies = self.threads.setdefault((channel, parent["ts"]), [])
        replies.append(message)
        self.in_thread[(channel, message["ts"])] = parent["ts"]
        summarize_thread(parent, replies)
        history.replace(parent)
        if broadcast:
            message["subtype"] = "thread_broadcast"
            history.add(message)

    def chat_get_permalink(self, args: Args) -> dict[str, Any]:
        channel = self.channel(args)["id"]
        ts = str(args.get("message_ts") or "")
        thread_ts = self.in_thread.get((channel, ts))
        key = ts_arg(args, "message_ts", "message_not_found")
        if thread_ts is None and (key is None or self.histories[channel].index(key) is None):
            raise SlackError("message_not_found")
        link = (
            f"https://{self.workspace.domain}.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        )
        if thread_ts:
            link += f"?thread_ts={thread_ts}&cid={channel}"
        return {"ok": True, "channel": channel, "permalink": link}
