"""`python -m bench [NAME]`: run one benchmark, or all of them."""

from __future__ import annotations

import sys
from collections.abc import Callable

from bench import burst, digest, limits, preview, schedules, webhook

BENCHMARKS: dict[str, Callable[[list[str]], int]] = {
    "webhook": webhook.main,
    "digest": digest.main,
    "preview": preview.main,
    "schedules": schedules.main,
    "limits": limits.main,
    "burst": burst.main,
}


def main(argv: list[str]) -> int:
    names = [argv[0]] if argv else list(BENCHMARKS)
    if names[0] not in BENCHMARKS:
        print(f"unknown benchmark {names[0]!r}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    for name in names:
        print(f"== {name}")
        BENCHMARKS[name](argv[1:])
    return 0


sys.exit(main(sys.argv[1:]))
