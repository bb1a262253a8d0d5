"""Holding Python's cyclic garbage collector off through work that allocates many objects in no
cycle: a big schedules file's YAML nodes, a channel's history pages.

Such objects are freed by reference counting as soon as they are unused, but their numbers set
off collection after collection, each of which walks every live object: that was most of the
time of validating a big file, and a third of collecting a big channel's history.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic collection inside; whatever cycles were made are collected after, as usual."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
