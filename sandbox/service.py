"""What the sandbox's parts share: started and stopped by hand, or by a `with` block."""

from __future__ import annotations

import subprocess
from typing import Any, Self


class Service:
    """A part that runs between `start()` and `stop()`; `with` does both."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def terminate(process: subprocess.Popen[Any], timeout: float) -> None:
    """Stop a child as a PaaS does: SIGTERM, then SIGKILL if it has not gone within `timeout`."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
