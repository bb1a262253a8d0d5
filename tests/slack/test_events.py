"""Events are deduplicated, durably queued and executed once by a real Celery worker."""

from __future__ import annotations

import concurrent.futures

import redis
from starlette.testclient import TestClient

from jobs import keys
from jobs.config import Settings
from jobs.errors import TokenRevoked
from jobs.slack.revocation import ensure_not_revoked, fingerprint
from sandbox.redis_server import RedisServer
from tests.conftest import BOT_TOKEN, Worker, environment, wait_for_state
from tests.signed import event_callback, signed_json
from webhook.app import create_app


def post_event(client: TestClient, payload: dict[str, object], **headers: str) -> int:
    body, signed = signed_json(payload, **headers)
    return client.post("/slack/events", content=body, headers=signed).status_code


def task_of(redis_client: redis.Redis, event_id: str) -> str:
    owner = redis_client.get(keys.event(event_id))
    assert owner is not None, f"{event_id} was never claimed"
    return str(owner)


def test_event_is_executed_by_a_real_worker(
    client: TestClient, redis_client: redis.Redis, worker: Worker
) -> None:
    payload = event_callback("app_mention")
    assert post_event(client, payload) == 200
    state = wait_for_state(client, task_of(redis_client, str(payload["event_id"])))
    assert state["state"] == "SUCCESS"
    assert state["result"] == {
        "event_id": payload["event_id"],
        "type": "app_mention",
        "handled": True,
    }
    assert f"received app_mention event {payload['event_id']}" in worker.log()


def test_slack_retries_of_an_accepted_event_run_it_once(
    client: TestClient, redis_client: redis.Redis, worker: Worker
) -> None:
    payload = event_callback("app_home_opened")
    event_id = str(payload["event_id"])
    assert post_event(client, payload) == 200
    for attempt in ("1", "2", "3"):
        retry = {"X-Slack-Retry-Num": attempt, "X-Slack-Retry-Reason": "http_timeout"}
        assert post_event(client, payload, **retry) == 200
    wait_for_state(client, task_of(redis_client, event_id))
    # A later event that lands after the retries proves the worker had time to see duplicates.
    after = event_callback("app_home_opened")
    assert post_event(client, after) == 200
    wait_for_state(client, task_of(redis_client, str(after["event_id"])))
    assert worker.log().count(f"event {event_id} ") == 1


def test_concurrent_deliveries_of_one_event_enqueue_one_task(
    client: TestClient, redis_client: redis.Redis, worker: Worker
) -> None:
    payload = event_callback("app_mention")
    event_id = str(payload["event_id"])
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: post_event(client, payload), range(16)))
    assert statuses == [200] * 16
    wait_for_state(client, task_of(redis_client, event_id))
    after = event_callback("app_mention")
    post_event(client, after)
    wait_for_state(client, task_of(redis_client, str(after["event_id"])))
    assert worker.log().count(f"event {event_id} ") == 1


def test_events_we_do_not_handle_are_acknowledged(
    client: TestClient, redis_client: redis.Redis, worker: Worker
) -> None:
    payload = event_callback("reaction_added", reaction="tada")
    assert post_event(client, payload) == 200
    state = wait_for_state(client, task_of(redis_client, str(payload["event_id"])))
    assert state["result"] == {
        "event_id": payload["event_id"],
        "type": "reaction_added",
        "handled": False,
    }


def test_the_verification_token_is_not_queued(
    client: TestClient, redis_client: redis.Redis, worker: Worker
) -> None:
    payload = event_callback("app_mention")
    post_event(client, payload)
    wait_for_state(client, task_of(redis_client, str(payload["event_id"])))
    assert "deprecated-verification-token" not in "".join(
        str(redis_client.get(key)) for key in redis_client.scan_iter("celery-task-meta-*")
    )


def test_app_uninstalled_stops_deliveries_from_posting(
    client: TestClient, redis_client: redis.Redis, worker: Worker
) -> None:
    redis_client.delete(keys.revoked(fingerprint(BOT_TOKEN)))
    ensure_not_revoked(redis_client, BOT_TOKEN)
    payload = event_callback("app_uninstalled")
    assert post_event(client, payload) == 200
    wait_for_state(client, task_of(redis_client, str(payload["event_id"])))
    try:
        ensure_not_revoked(redis_client, BOT_TOKEN)
    except TokenRevoked as refused:
        assert "reinstall the app" in str(refused)
        assert BOT_TOKEN not in str(refused)
    else:
        raise AssertionError("a revoked token was allowed to post")
    ensure_not_revoked(redis_client, "xoxb-a-new-token-after-reinstall")
    redis_client.delete(keys.revoked(fingerprint(BOT_TOKEN)))


def test_revoked_user_tokens_do_not_stop_the_bot(
    client: TestClient, redis_client: redis.Redis, worker: Worker
) -> None:
    redis_client.delete(keys.revoked(fingerprint(BOT_TOKEN)))
    payload = event_callback("tokens_revoked", tokens={"oauth": ["U0001"], "bot": []})
    post_event(client, payload)
    wait_for_state(client, task_of(redis_client, str(payload["event_id"])))
    ensure_not_revoked(redis_client, BOT_TOKEN)
    bot = event_callback("tokens_revoked", tokens={"oauth": [], "bot": ["U0BOT"]})
    post_event(client, bot)
    wait_for_state(client, task_of(redis_client, str(bot["event_id"])))
    assert redis_client.exists(keys.revoked(fingerprint(BOT_TOKEN)))
    redis_client.delete(keys.revoked(fingerprint(BOT_TOKEN)))


def test_redis_outage_answers_503_and_the_retry_is_not_dropped() -> None:
    server = RedisServer().start()
    settings = Settings.from_env(environment(server.url))
    payload = event_callback("app_mention")
    event_id = str(payload["event_id"])
    worker = None
    try:
        with TestClient(create_app(settings)) as client:
            assert client.get("/readyz").status_code == 200
            server.stop()
            assert post_event(client, payload) == 503
            assert client.get("/readyz").status_code == 503
            server.start()
            retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_error"}
            assert post_event(client, payload, **retry) == 200
            assert post_event(client, payload, **{**retry, "X-Slack-Retry-Num": "2"}) == 200
            worker = Worker(server.url).start()
            owner = redis.Redis.from_url(server.url, decode_responses=True).get(
                keys.event(event_id)
            )
            assert owner is not None
            assert wait_for_state(client, str(owner))["state"] == "SUCCESS"
            assert worker.log().count(f"event {event_id} ") == 1
    finally:
        if worker:
            worker.stop()
        server.stop()
