"""Workers, scheduling and the digest pipeline. `celery -A jobs worker` finds `app` here.

`app` is imported when first asked for, so that the web process and the `digests` command line,
which import `jobs.*` modules, do not pay for loading Celery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobs.celery import app

__all__ = ["app"]


def __getattr__(name: str) -> Any:
    if name == "app":
        from jobs.celery import app

        return app
    raise AttributeError(f"module 'jobs' has no attribute {name!r}")
