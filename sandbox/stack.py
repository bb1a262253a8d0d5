"""The dev stack's processes: each leads its own process group and writes through this process,
one line at a time prefixed with its name, so that whatever ends `scripts/dev` (a signal, or a
stdout that no longer takes output) can stop every one of them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


class StartError(Exception):
    """A part of the stack could not start; the message says which, and what to do."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM arrived while the stack was starting."""


class Output:
    """The one writer of this process's stdout, shared by the children's output and its own
    lines; once stdout stops taking output (a closed terminal or pipe), it asks the stack to
    stop and writes nothing more."""

    def __init__(self, stopping: threading.Event) -> None:
        self.stopping = stopping
        self.lock = threading.Lock()
        self.lost = False

    def write(self, line: str) -> None:
        with self.lock:
            if self.lost:
                return
            try:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
            except OSError:  # EPIPE, or EIO from a closed terminal
                self.lost = True
                self.stopping.set()
                # Nothing may write to it again, not even the interpreter's exit flush.
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)


@dataclass
class Child:
    """A process of the stack, and what it printed while starting."""

    name: str
    process: subprocess.Popen[bytes]
    procfile: bool  # one of the Procfile's processes, which the sandbox serves
    lines: list[str] = field(default_factory=list)

    def printed(self, *texts: str) -> bool:
        return any(text in line for line in list(self.lines) for text in texts)


@dataclass
class Stack:
    """The processes this run started; each leads its own process group."""

    stopping: threading.Event
    children: list[Child] = field(default_factory=list)
    redis: RedisServer | None = None
    env_file: Path | None = None

    def __post_init__(self) -> None:
        self.output = Output(self.stopping)

    def spawn(
        self, name: str, args: list[str], env: Mapping[str, str], procfile: bool = False
    ) -> Child:
        """Start `args`, its output prefixed with `name` through `output`."""
        process = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**env, "PYTHONUNBUFFERED": "1"},
            process_group=0,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        child = Child(name, process, procfile)
        self.children.append(child)
        threading.Thread(target=self.relay, args=(child,), daemon=True).start()
        return child

    def relay(self, child: Child) -> None:
        assert child.process.stdout is not None
        for raw in child.process.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            if len(child.lines) < 1000:  # enough for its start-up; the rest only passes through
                child.lines.append(line)
            self.output.write(f"{child.name:<7}| {line}")

    def wait_for(
        self, what: str, answers: Callable[[], bool], children: Sequence[Child] = ()
    ) -> None:
        """Return once `answers()`; fail, instead of hanging, when a child exits or time is up."""
        deadline = time.monotonic() + START_TIMEOUT
        while not answers():
            if self.stopping.is_set():
                raise Interrupted
            for child in children:
                if child.process.poll() is not None:
                    code = child.process.returncode
                    raise StartError(f"{child.name} exited (code {code}); its output is above")
            if time.monotonic() > deadline:
                raise StartError(f"{what} did not answer within {START_TIMEOUT:g}s")
            self.stopping.wait(0.1)

    def say(self, text: str) -> None:
        self.output.write(f"==> {text}")

    def stop(self) -> None:
        """The Procfile's processes first, all at once, then the sandbox and Redis they use."""
        if not (self.children or self.redis):
            return
        self.say("stopping")
        served = [c for c in self.children if c.procfile]
        rest = [[c] for c in reversed(self.children) if not c.procfile]
        for batch in [served, *rest]:
            for child in batch:
                with suppress(ProcessLookupError):
                    os.killpg(child.process.pid, signal.SIGTERM)
            for child in batch:
                try:
                    child.process.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.say(f"{child.name} did not stop within {STOP_TIMEOUT:g}s: killing it")
                with suppress(ProcessLookupError):
                    os.killpg(child.process.pid, signal.SIGKILL)  # whatever of its group is left
                child.process.wait()
        self.children.clear()
        if self.redis:
            self.redis.stop()
            self.redis = None
        if self.env_file:
            self.env_file.unlink(missing_ok=True)
        self.say("stopped")
