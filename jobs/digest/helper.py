"""A helper process for a command that builds one digest and exits (`digests preview`).

Such a command pays for everything once: importing YAKE (numpy and networkx with it, a third
of a second) and folding every message of the window into its channel's tally, while fetching
the pages is mostly this process's own work too. On another core, the helper imports YAKE and
folds each page this process hands it, while this process fetches the next; then it finds the
keywords. A thread could not do that: the interpreter runs one thread at a time.

Workers do without it: they import YAKE once, and their digests run side by side anyway.
"""

from __future__ import annotations

import gc
import importlib
import multiprocessing
import signal
import sys
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

import orjson

from jobs.digest.model import Message


class HelperGone(Exception):
    """The helper process stopped (killed, or out of memory) while it held a tally."""


class Helper:
    """This process's end of the conversation with the helper."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def keywords(self, texts: Sequence[str]) -> dict[str, int] | None:
        """The sample's keyword counts (`topics.counts`), or None when the helper could not
        find them: the caller finds them, or the error, itself."""
        try:
            self.connection.send(("keywords", list(texts)))
            found: dict[str, int] | None = self.connection.recv()
        except (EOFError, OSError):
            stop()
            return None
        return found

    def fold(self, tally: dict[str, Any]) -> None:
        """Begin folding pages into this tally (`ChannelTally.to_json`)."""
        self.send("tally", tally)

    def add_page(self, messages: list[Message]) -> None:
        """`ChannelTally.add_page`, in the helper."""
        self.send("page", orjson.dumps(messages))

    def folded(self) -> dict[str, Any]:
        """The tally with every page folded in, as `ChannelTally.to_json` makes it; an error the
        fold raised is raised here."""
        self.send("folded", None)
        try:
            failed, tally = self.connection.recv()
        except (EOFError, OSError):
            raise HelperGone from None
        if failed is not None:
            raise failed
        result: dict[str, Any] = tally
        return result

    def send(self, kind: str, value: object) -> None:
        try:
            self.connection.send((kind, value))
        except OSError:
            raise HelperGone from None


# The helper of this process, once `start` started one.
current: Helper | None = None


def start() -> None:
    """Fork the helper. Call it before any thread starts: a fork copies only the thread that
    calls it (multiprocessing's fork context: no new interpreter, no resource tracker)."""
    global current
    if current is not None or "yake" in sys.modules:
        return
    if "fork" not in multiprocessing.get_all_start_methods():  # Windows: do without
        return
    context = multiprocessing.get_context("fork")
    for stream in (sys.stdout, sys.stderr):  # or the helper would write their buffers again
        stream.flush()
    here, there = context.Pipe()
    context.Process(target=serve, args=(there,), name="digest-helper", daemon=True).start()
    there.close()
    current = Helper(here)


def stop() -> None:
    """Do without the helper from now on."""
    global current
    if current is not None:
        current.connection.close()
        current = None


def serve(connection: Connection) -> None:
    """The helper's loop, until this process closes its end."""
    from jobs.digest import topics
    from jobs.digest.summarize import ChannelTally

    # Ctrl-C reaches the whole process group: the command stops, and so, with it, the helper.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.disable()  # it lives for one command, and what it makes is in no cycle
    # Pages are folded as they come while YAKE is imported; the keywords wait for it.
    importing = threading.Thread(target=importlib.import_module, args=("yake",), daemon=True)
    importing.start()
    tally: ChannelTally | None = None
    failed: Exception | None = None
    while True:
        try:
            kind, value = connection.recv()
        except EOFError:
            return
        if kind == "keywords":
            importing.join()
            try:
                found: dict[str, int] | None = topics.extract(value)
            except Exception:
                found = None
            connection.send(found)
        elif kind == "tally":
            tally, failed = ChannelTally.from_json(value), None
        elif kind == "page" and tally is not None and failed is None:
            try:
                tally.add_page(orjson.loads(value))
            except Exception as error:  # raised where the tally is asked for
                failed = error
        elif kind == "folded":
            connection.send((failed, None if failed or tally is None else tally.to_json()))
