"""`scripts/bench limits`: how long the largest schedules file the limits allow takes to validate.

The file has the most schedules allowed, each with every kind of field, and as many channels
each as the byte limit leaves room for: the most YAML nodes a valid file can hold.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from jobs.scheduling.file import validate
from jobs.scheduling.limits import MAX_BYTES, MAX_ITEMS, MAX_SCHEDULES


def largest_file() -> str:
    """The valid schedules file with the most schedules and channels within `MAX_BYTES`."""
    best = entries(1)
    for count in range(2, MAX_ITEMS + 1):
        text = entries(count)
        if len(text.encode()) > MAX_BYTES:
            break
        best = text
    return best


def entries(channels: int) -> str:
    listed = ", ".join(["C1"] * channels)
    lines = ["version: 1", "schedules:"]
    lines += [
        f'  - {{name: s{i}, cron: "0 9 * * MON", timezone: Europe/Berlin, channels: [{listed}],'
        " deliver: {slack: [C2], email: [a@example.com]}, sections: [summary]}"
        for i in range(MAX_SCHEDULES)
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="digests-limits-") as folder:
        path = Path(folder) / "schedules.yaml"
        path.write_text(largest_file())
        times = []
        for _ in range(3):
            started = time.perf_counter()
            schedules, problems = validate(path)
            times.append(time.perf_counter() - started)
        assert not problems and len(schedules) == MAX_SCHEDULES, problems[:3]
        size = path.stat().st_size
    print(
        f"validate         {min(times):.3f} s for the largest file allowed ({size:,} bytes, "
        f"{MAX_SCHEDULES:,} schedules; best of 3; goal < 1 s)"
    )
    return 0
