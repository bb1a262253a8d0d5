"""Workers, scheduling and the digest pipeline. `celery -A jobs worker` finds `app` here."""

from jobs.celery import app

__all__ = ["app"]
