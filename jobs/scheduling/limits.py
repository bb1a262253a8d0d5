"""How big a schedules file and its parts may be: validation stays well under a second, and no
value is too long for where it goes (Slack channel names, email paths, Redis keys)."""

from __future__ import annotations

# Checked before any parsing: the most bytes a file may hold (2 MiB).
MAX_BYTES = 2 * 1024 * 1024
MAX_SCHEDULES = 10_000
# Per schedule: the most `channels`, `deliver.slack`, `deliver.email` or `sections`, each.
MAX_ITEMS = 100
# The longest text of each kind: a Slack channel name is at most 80 characters (plus '#'), an
# email path 254 (RFC 5321), the longest IANA zone some 30.
MAX_LENGTH = {
    "name": 63,
    "cron": 200,
    "timezone": 64,
    "channel": 81,
    "email": 254,
    "title": 150,  # a Slack header block's limit
    "user": 21,  # U or W and up to 20 more: Slack's IDs are 9 to 11 today
}
# Past this many problems the rest are not looked for: the file needs fixing first.
MAX_PROBLEMS = 100
