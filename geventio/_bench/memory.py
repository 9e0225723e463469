"""Workload h, resident memory per idle task, in a fresh interpreter.

``python -m geventio._bench.memory IMPLEMENTATION COUNT`` starts COUNT idle
tasks (each ran its first line and returned, no message pending) and prints
one JSON object. A process of its own per implementation keeps one
measurement's arenas, threads and caches out of the next.
"""

from __future__ import annotations

import gc
import json
import os
import sys
from typing import Any

from greenlet import greenlet

from .common import os_threads, rss_bytes, vms_bytes


def _greenlets() -> int:
    return sum(1 for obj in gc.get_objects() if isinstance(obj, greenlet))


def measure(name: str, n: int) -> dict[str, float]:
    """Start *n* idle tasks on implementation *name*; return per-task costs.

    The "before" sample is taken once the implementation is running and
    warmed up with a few idle tasks of its own, so the figures are the
    cost of *n* more.
    """
    from .runner import load

    samples: dict[str, dict[str, int]] = {}

    def sample(label: str) -> None:
        gc.collect()
        samples[label] = {
            "rss": rss_bytes(),
            "vms": vms_bytes(),
            "greenlets": _greenlets(),
            "threads": os_threads(),
        }

    load(name).idle_tasks(n, sample)
    before, after = samples["before"], samples["after"]

    def per_task(key: str) -> float:
        return (after[key] - before[key]) / n

    return {
        "per_task": per_task("rss") / 1024,
        "vms_per_task": per_task("vms") / 1024,
        "greenlets": per_task("greenlets"),
        "threads": per_task("threads"),
        "checked": n,
    }


def main(argv: list[str]) -> None:
    name, count = argv
    result: dict[str, Any] = measure(name, int(count))
    print(json.dumps(result), flush=True)
    # Tearing the tasks down is not what is measured, and with 100,000 of
    # them it takes a while: leave without it.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
