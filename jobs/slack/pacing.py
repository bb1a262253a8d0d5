"""Pacing with every other worker on a token: when Slack answers 429 for a method, all of them
wait out its `Retry-After`, then call that method one at a time for a minute after it.

The wait is what Slack said, shared through Redis; there is no table of rates, since limits
differ by plan, by app and over time. Other methods and other tokens keep going. A short wait
is slept where it is; a longer one raises `RateLimited`, so the task hands its worker back and
retries when the wait is over.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from jobs import keys
from jobs.errors import RateLimited
from jobs.slack.revocation import fingerprint

# Waits up to this long are slept in the worker; longer ones hand the worker back.
SLEEP_LIMIT = 3.0
# The longest a caller holds the turn: the client's timeout, and a margin; a crashed holder's
# turn lapses after it.
TURN_SECONDS = 35.0
# After a back-off, calls go one at a time for as long as Slack counts its limits over: a minute.
IN_TURN = 60.0
POLL = 0.02

# Raise the back-off to `until` (epoch seconds) unless a later one is set; it lasts `ttl` ms.
BACK_OFF = """
local now = redis.call('GET', KEYS[1])
if not now or tonumber(now) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
"""
# Give the turn back only if it is still ours.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
"""


class Pace:
    """The shared back-off of one token's methods."""

    def __init__(self, cache: redis.Redis, token: str, owner: str) -> None:
        self.cache = cache
        self.token = fingerprint(token)
        self.owner = owner  # who takes a turn: a run, or a process

    @contextmanager
    def turn(self, method: str) -> Iterator[None]:
        """Wait until `method` may be called, for as long as the `with` block makes the call."""
        held = self.wait(method)
        try:
            yield
        finally:
            if held:
                self.cache.eval(RELEASE, 1, keys.pace_turn(self.token, method), self.owner)

    def wait(self, method: str) -> bool:
        """Return once the call may go; True when it holds the method's turn (after a
        back-off, callers go one at a time). Raises `RateLimited` for a long wait."""
        key = keys.pace(self.token, method)
        while True:
            until = self.cache.get(key)
            if until is None:
                return False
            left = float(until) - time.time()
            if left > SLEEP_LIMIT:
                raise RateLimited(method, left)
            if left > 0:
                time.sleep(left)
                continue
            turn = keys.pace_turn(self.token, method)
            if self.cache.set(turn, self.owner, nx=True, px=int(TURN_SECONDS * 1000)):
                return True
            time.sleep(POLL)

    def back_off(self, method: str, seconds: float) -> None:
        """Every caller of `method` on this token waits `seconds`, then goes one at a time for
        `IN_TURN` seconds more."""
        until = time.time() + seconds
        ttl = int((seconds + IN_TURN) * 1000)
        self.cache.eval(BACK_OFF, 1, keys.pace(self.token, method), f"{until:.6f}", ttl)
