"""The leader lock: one holder at a time, renewed while it lives, and writes fenced by it.

The lock is a Redis key holding its holder's id with a TTL. `renew` extends it only for its own
holder, or takes it when free; `write` runs Redis commands only while the lock is still ours, in
one Lua call, so a holder that lost the lock (paused past its TTL) writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis

# KEYS[1] the lock; ARGV our id and the TTL in ms.
# Returns {1} renewed, {2} taken (it was free), or {0, its ms left} when another holds it.
RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1}
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {2}
end
return {0, redis.call('PTTL', KEYS[1])}
"""
# KEYS[1] the lock; ARGV our id, then each command as its word count and its words.
# Runs the commands only while the lock is ours: 1 if it ran them, 0 if not.
FENCED = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local i = 2
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
return 1
"""
RENEWED, TAKEN = 1, 2
# Fenced writes per Lua call, so one call never blocks Redis for long.
WRITE_BATCH = 500

# A Redis command as its words: ("SET", key, value).
RedisCommand = tuple[str, ...]


@dataclass(frozen=True)
class Renewal:
    """How asking for the lock went: renewed, taken, or held by another for `left` seconds."""

    status: int
    left: float = 0.0  # another holder's TTL; 0 when it has none

    @property
    def ours(self) -> bool:
        return self.status in (RENEWED, TAKEN)


class LeaderLock:
    """The lock at `key` for the holder `holder`, `ttl` seconds at a time."""

    def __init__(self, client: redis.Redis, key: str, holder: str, ttl: float) -> None:
        self.key = key
        self.holder = holder
        self.ttl = ttl
        self.renew_script = client.register_script(RENEW)
        self.fenced_script = client.register_script(FENCED)

    def renew(self) -> Renewal:
        """Extend the lock if it is ours, take it if it is free."""
        status, *rest = self.renew_script([self.key], [self.holder, int(self.ttl * 1000)])
        if status in (RENEWED, TAKEN):
            return Renewal(int(status))
        left = int(rest[0])
        return Renewal(0, left / 1000 if left > 0 else 0.0)

    def write(self, commands: Sequence[RedisCommand]) -> bool:
        """Run the commands while the lock is ours, in batches; False once it is not."""
        for start in range(0, len(commands), WRITE_BATCH):
            batch = words(commands[start : start + WRITE_BATCH])
            if not self.fenced_script([self.key], [self.holder, *batch]):
                return False
        return True

    def release(self) -> None:
        """Give the lock up at once, if it is still ours."""
        self.write([("DEL", self.key)])


def words(commands: Sequence[RedisCommand]) -> list[str]:
    """Commands as `FENCED` reads them: each one's word count, then its words."""
    flat: list[str] = []
    for command in commands:
        flat.append(str(len(command)))
        flat.extend(command)
    return flat
