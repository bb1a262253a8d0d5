"""The Celery application: JSON only, late acks, one message per worker process at a time."""

from __future__ import annotations

from typing import Any

from celery import Celery

from jobs.config import Settings, settings_or_exit
from jobs.queue import MAX_TASK_SECONDS, QUEUE


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings for these service settings."""
    url = settings.redis.url
    config: dict[str, Any] = {
        "broker_url": url,
        "result_backend": url,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_track_started": True,
        "result_expires": 86400,
        "task_time_limit": MAX_TASK_SECONDS,
        "task_default_queue": QUEUE,
        # An unacked message is redelivered after this; it must outlast the longest task.
        "broker_transport_options": {"visibility_timeout": 2 * MAX_TASK_SECONDS},
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        "timezone": "UTC",
        "enable_utc": True,
        # `celery -A jobs beat` runs schedules.yaml with its state in Redis: no local file.
        "beat_scheduler": "jobs.scheduling.beat:Scheduler",
    }
    if settings.redis.ssl_options:
        config["broker_use_ssl"] = settings.redis.ssl_options
        config["redis_backend_use_ssl"] = settings.redis.ssl_options
    return config


app = Celery("jobs", include=["jobs.tasks"])
# Read when the configuration is first needed, so importing `jobs` never reads the environment.
app.add_defaults(lambda: celery_config(settings_or_exit("celery")))
