"""`/unsubscribe`: signed links, a page for GET, one-click POST, and the set the worker reads."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
import redis
from starlette.testclient import TestClient

from jobs import keys
from jobs.config import Settings
from jobs.digest import unsubscribe
from tests.conftest import environment
from webhook.app import create_app

SCHEDULE = "eng-weekly"


@pytest.fixture
def db(redis_url: str) -> Iterator[redis.Redis]:
    """Bytes in and out, as the service's own clients."""
    client = redis.Redis.from_url(redis_url)
    client.delete(keys.unsubscribed(SCHEDULE))
    yield client
    client.close()


@pytest.fixture
def key(db: redis.Redis) -> bytes:
    return unsubscribe.link_key(db)


def link(key: bytes, recipient: str = "Ana@Example.com") -> str:
    """The path and query of the link a digest mail to `recipient` carries."""
    return unsubscribe.url("/", key, SCHEDULE, recipient)


def test_a_token_signs_the_schedule_and_the_address_not_its_case() -> None:
    key = b"k" * 32
    first = unsubscribe.token(key, SCHEDULE, "ana@example.com")
    assert unsubscribe.is_valid(key, SCHEDULE, "ANA@example.com ", first)
    assert not unsubscribe.is_valid(key, SCHEDULE, "bo@example.com", first)
    assert not unsubscribe.is_valid(key, "ops-daily", "ana@example.com", first)
    assert not unsubscribe.is_valid(b"x" * 32, SCHEDULE, "ana@example.com", first)
    assert not unsubscribe.is_valid(None, SCHEDULE, "ana@example.com", first)
    assert len(first) == 22  # 128 bits, URL-safe, no padding


def test_the_link_key_is_made_once_and_kept(db: redis.Redis) -> None:
    db.delete(keys.UNSUBSCRIBE_KEY)
    made = unsubscribe.link_key(db)
    assert len(made) == 32 and unsubscribe.link_key(db) == made
    assert db.ttl(keys.UNSUBSCRIBE_KEY) == -1


def test_get_shows_a_button_and_changes_nothing(
    client: TestClient, db: redis.Redis, key: bytes
) -> None:
    answer = client.get(link(key))
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert '<form method="post">' in answer.text and "Ana@Example.com" in answer.text
    assert db.smembers(keys.unsubscribed(SCHEDULE)) == set()


def test_one_click_post_unsubscribes_and_asking_again_says_the_same(
    client: TestClient, db: redis.Redis, key: bytes
) -> None:
    form = {"List-Unsubscribe": "One-Click"}
    first = client.post(link(key), data=form)
    assert first.status_code == 200 and "will no longer receive" in first.text
    assert db.smembers(keys.unsubscribed(SCHEDULE)) == {b"ana@example.com"}
    again = client.post(link(key), data=form)
    assert again.status_code == 200 and again.text == first.text
    assert "will no longer receive" in client.get(link(key)).text  # no button any more
    assert unsubscribe.unsubscribed(db, SCHEDULE) == {"ana@example.com"}


@pytest.mark.parametrize(
    "change", [{"recipient": "bo@example.com"}, {"schedule": "ops-daily"}, {"token": "A" * 22}]
)
def test_an_edited_link_is_403_and_unsubscribes_nobody(
    client: TestClient, db: redis.Redis, key: bytes, change: dict[str, str]
) -> None:
    query = {
        "schedule": SCHEDULE,
        "recipient": "ana@example.com",
        "token": unsubscribe.token(key, SCHEDULE, "ana@example.com"),
        **change,
    }
    answer = client.post(f"/unsubscribe?{urlencode(query)}")
    assert answer.status_code == 403 and "not valid" in answer.text
    assert db.exists(keys.unsubscribed(SCHEDULE), keys.unsubscribed("ops-daily")) == 0


def test_an_incomplete_link_is_400(client: TestClient, key: bytes) -> None:
    answer = client.post(link(key).split("&token=")[0])
    assert answer.status_code == 400 and "incomplete" in answer.text


def test_user_text_in_a_link_is_escaped_on_the_page(client: TestClient, key: bytes) -> None:
    answer = client.get(link(key, recipient="<script>x</script>@example.com"))
    assert answer.status_code == 200
    assert "<script>" not in answer.text and "&lt;script&gt;" in answer.text


def test_while_redis_is_down_it_is_503(key: bytes) -> None:
    settings = Settings.from_env(environment("redis://127.0.0.1:1/0"))
    with TestClient(create_app(settings)) as down:
        answer = down.post(link(key))
    assert answer.status_code == 503 and "try again" in answer.text
