"""The store `conversations.history` pages through, one per channel, which also takes the posts
the simulator receives."""

from __future__ import annotations

from bisect import bisect_left, bisect_right

import orjson

from sandbox.slack.arguments import Args, decode_cursor, encode_cursor, flag_arg, limit_arg, ts_arg
from sandbox.workspace import Message, ts_micros

HISTORY_LIMIT = (100, 999)  # (default, maximum) page sizes, as Slack documents them


class History:
    """A channel's history sorted by ts, each message serialized once: a page is a bisect and a
    join of bytes, so paging through 100,000 messages costs the pages, not the channel."""

    def __init__(self, messages: list[Message]) -> None:
        keyed = sorted((ts_micros(message["ts"]), index) for index, message in enumerate(messages))
        self.keys = [key for key, _ in keyed]
        self.plain: list[bytes] = []
        self.full: list[bytes] = []  # with metadata, which Slack returns only when asked
        for _, index in keyed:
            plain, full = self.serialize(messages[index])
            self.plain.append(plain)
            self.full.append(full)

    @staticmethod
    def serialize(message: Message) -> tuple[bytes, bytes]:
        full = orjson.dumps(message)
        if "metadata" not in message:
            return full, full
        return orjson.dumps({k: v for k, v in message.items() if k != "metadata"}), full

    def add(self, message: Message) -> None:
        key = ts_micros(message["ts"])
        index = bisect_left(self.keys, key)
        plain, full = self.serialize(message)
        self.keys.insert(index, key)
        self.plain.insert(index, plain)
        self.full.insert(index, full)

    def index(self, key: int) -> int | None:
        index = bisect_left(self.keys, key)
        return index if index < len(self.keys) and self.keys[index] == key else None

    def get(self, key: int) -> Message | None:
        index = self.index(key)
        return None if index is None else orjson.loads(self.full[index])

    def replace(self, message: Message) -> None:
        index = self.index(ts_micros(message["ts"]))
        assert index is not None, "only a message in the history can be replaced"
        self.plain[index], self.full[index] = self.serialize(message)

    def page(self, args: Args) -> bytes:
        """`conversations.history`'s answer: newest first, from the cursor down to `oldest`."""
        oldest = ts_arg(args, "oldest", "invalid_ts_oldest")
        latest = ts_arg(args, "latest", "invalid_ts_latest")
        inclusive = flag_arg(args, "inclusive")
        low = (
            0 if oldest is None else (bisect_left if inclusive else bisect_right)(self.keys, oldest)
        )
        high = len(self.keys)
        if latest is not None:
            high = (bisect_right if inclusive else bisect_left)(self.keys, latest)
        if args.get("cursor"):
            high = min(high, bisect_right(self.keys, decode_cursor(args["cursor"], "next_ts")))
        start = max(low, high - limit_arg(args, HISTORY_LIMIT))
        chosen = (self.full if flag_arg(args, "include_all_metadata") else self.plain)[start:high]
        chosen.reverse()
        more = start > low
        return orjson.dumps(
            {
                "ok": True,
                "messages": orjson.Fragment(b"[" + b",".join(chosen) + b"]"),
                "has_more": more,
                "pin_count": 0,
                "response_metadata": {
                    "next_cursor": encode_cursor(f"next_ts:{self.keys[start - 1]}") if more else ""
                },
            }
        )
