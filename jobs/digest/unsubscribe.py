"""Unsubscribe links: signed, so that nobody can unsubscribe somebody else by editing a URL.

The signing key lives in Redis, which every process already shares, rather than in one more
setting for the operator to generate and copy to the web and the workers alike. Losing it (a
new Redis) only makes old links say they are no longer valid.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import cast
from urllib.parse import urlencode

import redis

from jobs import keys


def address(recipient: str) -> str:
    """The form an address is kept and signed in: mail systems treat it case-blind."""
    return recipient.strip().lower()


def token(key: bytes, schedule: str, recipient: str) -> str:
    """The signature of (schedule, recipient): 128 bits of HMAC-SHA256, URL-safe."""
    signed = hmac.new(key, f"{schedule}\n{address(recipient)}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(signed.digest()[:16]).rstrip(b"=").decode()


def is_valid(key: bytes | None, schedule: str, recipient: str, given: str) -> bool:
    """Whether `given` is the link's token; constant-time, and false without a key."""
    if key is None:
        return False
    return hmac.compare_digest(token(key, schedule, recipient).encode(), given.encode())


def url(public_url: str, key: bytes, schedule: str, recipient: str) -> str:
    """The link under `PUBLIC_URL` that unsubscribes the recipient from the schedule."""
    base = public_url if public_url.endswith("/") else public_url + "/"
    query = {"schedule": schedule, "recipient": recipient, "token": token(key, schedule, recipient)}
    return f"{base}unsubscribe?{urlencode(query)}"


def link_key(client: redis.Redis) -> bytes:
    """The signing key, made on first use; SET NX so that concurrent workers agree on one."""
    client.set(keys.UNSUBSCRIBE_KEY, secrets.token_bytes(32), nx=True)
    return cast(bytes, client.get(keys.UNSUBSCRIBE_KEY))  # our clients never decode


def unsubscribed(client: redis.Redis, schedule: str) -> set[str]:
    """The addresses that unsubscribed from the schedule's mail."""
    members = cast(set[bytes], client.smembers(keys.unsubscribed(schedule)))
    return {member.decode() for member in members}
