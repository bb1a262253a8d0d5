"""Slack's rate limits as the simulator enforces them: each method's tier, counted per token
over a sliding minute, answered with 429 and the seconds until the window has room.

Slack documents the tiers in calls a minute (Tier 1: 1+, 2: 20+, 3: 50+, 4: 100+) and keeps
`chat.postMessage` to about one a second per channel. Since 2025, apps outside the Marketplace
get `conversations.history` and `.replies` at one call a minute and 15 messages a page. A
shortened `minute` lets tests and benchmarks live through many Slack minutes quickly.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field

PER_MINUTE = {1: 1, 2: 20, 3: 50, 4: 100}
TIERS = {
    "auth.test": 4,
    "conversations.list": 2,
    "conversations.info": 3,
    "conversations.history": 3,
    "conversations.replies": 3,
    "conversations.members": 4,
    "users.info": 4,
    "users.list": 2,
    "chat.getPermalink": 4,
    "views.publish": 4,
    "views.open": 4,
}
# One post a second per channel, with short bursts: counted per channel over the minute.
POSTS_PER_CHANNEL = 60
PAGED_2025 = ("conversations.history", "conversations.replies")
PAGE_2025 = 15


@dataclass
class Limits:
    """Which limits are on: the tiers (`tiers`), and or only the 2025 limits (`like_2025`), over
    a minute of `minute` seconds; `page` caps the messages a history or replies page returns
    (Slack may return fewer than asked)."""

    minute: float = 60.0
    tiers: bool = True
    like_2025: bool = False
    page: int | None = None
    calls: dict[tuple[str, str], deque[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.minute <= 0:
            raise ValueError(f"a minute lasts more than 0 seconds, not {self.minute}")
        if self.page is not None and self.page < 1:
            raise ValueError(f"a page holds at least one message, not {self.page}")

    def per_minute(self, method: str) -> int | None:
        """Calls a minute the method takes per token (per channel for posts); None: no limit."""
        if self.like_2025 and method in PAGED_2025:
            return 1
        if not self.tiers:
            return None
        if method == "chat.postMessage":
            return POSTS_PER_CHANNEL
        tier = TIERS.get(method)
        return None if tier is None else PER_MINUTE[tier]

    def page_size(self, method: str, asked: int | None) -> int | None:
        """The `limit` a history or replies call is served with; None leaves it as asked."""
        if method not in PAGED_2025:
            return None
        cap = PAGE_2025 if self.like_2025 else self.page
        if cap is None:
            return None
        return cap if asked is None else min(asked, cap)

    def admit(self, method: str, token: str, channel: str = "") -> float:
        """0 when the call may go through (and it is counted), else the seconds until the
        sliding minute has room for it: the call's `Retry-After`."""
        limit = self.per_minute(method)
        if limit is None:
            return 0.0
        key = (method, f"{token} {channel}" if method == "chat.postMessage" else token)
        now = time.monotonic()
        with self.lock:
            window = self.calls.setdefault(key, deque())
            while window and window[0] <= now - self.minute:
                window.popleft()
            if len(window) >= limit:
                return window[0] + self.minute - now
            window.append(now)
        return 0.0

    def retry_after(self, wait: float) -> str:
        """The header's value: whole seconds as Slack sends them; a shortened minute sends
        fractions, or tests would wait whole seconds."""
        if self.minute >= 60:
            return str(max(1, math.ceil(wait)))
        return f"{wait:.3f}"
