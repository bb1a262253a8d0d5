"""`GET /tasks/{id}`, `/healthz` and `/readyz`."""

from __future__ import annotations

import uuid

import redis
from starlette.testclient import TestClient

from jobs import keys
from jobs.config import Settings
from tests.conftest import environment
from webhook.app import create_app


def test_an_id_never_issued_is_404(client: TestClient) -> None:
    answer = client.get(f"/tasks/{uuid.uuid4()}")
    assert answer.status_code == 404
    assert answer.json() == {"error": "unknown task id"}


def test_an_id_that_could_not_be_one_is_404(client: TestClient) -> None:
    assert client.get("/tasks/..%2F..%2Fetc").status_code == 404
    assert client.get("/tasks/" + "a" * 200).status_code == 404


def test_an_issued_task_not_yet_started_is_pending(
    client: TestClient, redis_client: redis.Redis
) -> None:
    task_id = str(uuid.uuid4())
    redis_client.set(keys.task(task_id), 1, ex=60)
    assert client.get(f"/tasks/{task_id}").json() == {
        "id": task_id,
        "state": "PENDING",
        "progress": None,
        "result": None,
        "error": None,
    }


def test_progress_and_started_show_no_worker_details(
    client: TestClient, redis_client: redis.Redis
) -> None:
    task_id = str(uuid.uuid4())
    redis_client.set(keys.task(task_id), 1, ex=60)
    meta = f"celery-task-meta-{task_id}"
    redis_client.set(meta, '{"status": "STARTED", "result": {"pid": 1, "hostname": "w1"}}', ex=60)
    started = client.get(f"/tasks/{task_id}").json()
    assert started["state"] == "STARTED" and started["result"] is None
    redis_client.set(meta, '{"status": "PROGRESS", "result": {"pages": 3}}', ex=60)
    assert client.get(f"/tasks/{task_id}").json()["progress"] == {"pages": 3}


def test_a_corrupt_backend_record_is_not_a_500(
    client: TestClient, redis_client: redis.Redis
) -> None:
    task_id = str(uuid.uuid4())
    redis_client.set(keys.task(task_id), 1, ex=60)
    redis_client.set(f"celery-task-meta-{task_id}", b"\x80not json", ex=60)
    answer = client.get(f"/tasks/{task_id}")
    assert answer.status_code == 200
    assert answer.json()["state"] == "UNKNOWN"


def test_healthz_does_not_need_redis() -> None:
    settings = Settings.from_env(environment("redis://127.0.0.1:1/0"))
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["error"] == "Redis is unreachable"
        assert client.get(f"/tasks/{uuid.uuid4()}").status_code == 503


def test_readyz_with_redis(client: TestClient) -> None:
    assert client.get("/readyz").json() == {"status": "ready"}
