"""What the sandbox's parts share: started and stopped by hand, or by a `with` block."""

from __future__ import annotations

from typing import Self


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
