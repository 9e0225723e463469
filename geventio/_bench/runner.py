"""Runs the workloads on every implementation and collects the figures.

Repetitions are interleaved (repetition 1 of every implementation, then
repetition 2, ...), so a noisy moment on the machine hits every column
rather than one.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from time import perf_counter
from types import ModuleType
from typing import Any, TextIO

from .common import BenchError, open_fds, os_threads, settle
from .workloads import (
    MEMORY_REPETITIONS,
    REPETITIONS,
    WORKLOADS,
    Workload,
)

__all__ = ["Results", "load", "run_workloads"]

_MODULES = {
    "geventio": "impl_geventio",
    "pykka": "impl_pykka",
    "threads": "impl_threads",
    "gevent-hub": "impl_hub",
}

# Seconds one memory subprocess may take: starting 100,000 tasks, plus a
# slow machine's margin.
_MEMORY_TIMEOUT = 600


def load(name: str) -> ModuleType:
    """The module implementing the workloads for *name*."""
    return importlib.import_module(f"{__package__}.{_MODULES[name]}")


def unavailable(name: str) -> str | None:
    """Why implementation *name* cannot run here, or None if it can."""
    if name == "pykka":
        from . import impl_pykka

        return impl_pykka.available()
    return None


# -- the two workloads the runner drives itself -------------------------------


def _quiet_threads() -> int:
    """The thread count once threads that are still exiting have gone."""
    last = os_threads()
    for _ in range(50):
        settle(os_threads, last - 1, timeout=0.02)
        now = os_threads()
        if now == last:
            return now
        last = now
    return last


def start_stop(module: ModuleType, cycles: int) -> dict[str, float]:
    """Workload i: start and shut down a one-worker system *cycles* times.

    Threads and descriptors are counted while the first system runs, and
    once more after the last one stopped (given a moment for exiting
    threads to leave /proc).
    """
    module.system_stop(module.system_start())
    threads0, fds0 = _quiet_threads(), open_fds()
    starts, stops = [], []
    threads = fds = 0
    for cycle in range(cycles):
        t0 = perf_counter()
        system = module.system_start()
        t1 = perf_counter()
        if not cycle:
            threads, fds = os_threads() - threads0, open_fds() - fds0
        t2 = perf_counter()
        module.system_stop(system)
        stops.append(perf_counter() - t2)
        starts.append(t1 - t0)
    totals = [start + stop for start, stop in zip(starts, stops, strict=True)]
    return {
        "ms": statistics.median(totals) * 1e3,
        "start_ms": statistics.median(starts) * 1e3,
        "stop_ms": statistics.median(stops) * 1e3,
        "threads": threads,
        "fds": fds,
        "threads_left": settle(os_threads, threads0) - threads0,
        "fds_left": settle(open_fds, fds0) - fds0,
        "checked": cycles,
    }


def idle_memory(name: str, n: int) -> dict[str, float]:
    """Workload h, in a fresh interpreter (see :mod:`.memory`)."""
    import geventio

    env = dict(os.environ)
    # The child imports this very geventio, installed or from a checkout.
    package_parent = os.path.dirname(os.path.dirname(geventio.__file__))
    env["PYTHONPATH"] = os.pathsep.join(
        path for path in (package_parent, env.get("PYTHONPATH")) if path
    )
    result = subprocess.run(
        [sys.executable, "-m", f"{__package__}.memory", name, str(n)],
        capture_output=True,
        text=True,
        timeout=_MEMORY_TIMEOUT,
        env=env,
        check=False,
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode or not lines:
        raise BenchError(
            f"the memory process for {name} failed with status "
            f"{result.returncode}:\n{result.stderr.strip()}"
        )
    figures: dict[str, float] = json.loads(lines[-1])
    return figures


# -- running ------------------------------------------------------------------


class Results:
    """Every figure of one run: per workload, per implementation, per
    repetition; plus errors and skipped peers."""

    def __init__(self, mode: str, implementations: tuple[str, ...]) -> None:
        self.mode = mode
        self.implementations = implementations
        self.skipped: dict[str, str] = {}
        self.runs: dict[str, dict[str, list[dict[str, float]]]] = {}
        self.errors: dict[str, dict[str, str]] = {}
        self.seconds: dict[str, float] = {}
        self.workloads: list[Workload] = []

    def median(self, key: str, name: str, figure: str) -> float | None:
        """The median of *figure* over the repetitions, or None."""
        runs = self.runs.get(key, {}).get(name)
        if not runs or name in self.errors.get(key, {}):
            return None
        return statistics.median(run[figure] for run in runs)

    def to_json(self) -> dict[str, Any]:
        workloads = {}
        for workload in self.workloads:
            key = workload.key
            entry: dict[str, Any] = {"title": workload.title, "results": {}}
            for name in self.implementations:
                runs = self.runs.get(key, {}).get(name, [])
                error = self.errors.get(key, {}).get(name)
                if not runs and error is None:
                    continue  # skipped, or a workload it does not have
                result: dict[str, Any] = {
                    "size": workload.size(self.mode, name),
                    "expected": workload.expected(self.mode, name),
                    "repetitions": runs,
                }
                if runs:
                    result["median"] = {
                        figure: self.median(key, name, figure) for figure in runs[0]
                    }
                if error is not None:
                    result["error"] = error
                entry["results"][name] = result
            entry["seconds"] = self.seconds.get(key)
            workloads[key] = entry
        return {"mode": self.mode, "skipped": self.skipped, "workloads": workloads}


def _run_once(workload: Workload, name: str, module: ModuleType, size: int) -> Any:
    if workload.key == "h":
        return idle_memory(name, size)
    if workload.key == "i":
        return start_stop(module, size)
    function: Callable[[int], dict[str, float]] = getattr(module, workload.function)
    return function(size)


def run_workloads(
    mode: str,
    letters: str,
    implementations: tuple[str, ...],
    repetitions: int | None,
    progress: TextIO,
) -> Results:
    """Run the selected workloads; report progress on *progress*.

    A run that fails verification is recorded as an error for that
    implementation and workload, and not repeated; the others go on.
    """
    results = Results(mode, implementations)
    modules = {}
    for name in implementations:
        reason = unavailable(name)
        if reason is None:
            modules[name] = load(name)
        else:
            results.skipped[name] = reason
            print(f"skipping {name}: {reason}", file=progress, flush=True)
    for workload in WORKLOADS:
        if workload.letter not in letters:
            continue
        results.workloads.append(workload)
        reps = repetitions or REPETITIONS[mode]
        if workload.key == "h":
            reps = min(reps, MEMORY_REPETITIONS[mode])
        runs = results.runs.setdefault(workload.key, {})
        errors = results.errors.setdefault(workload.key, {})
        print(f"{workload.key:7} {workload.title} ", end="", file=progress, flush=True)
        t0 = perf_counter()
        for _ in range(reps):
            for name, module in modules.items():
                if name in errors or not workload.applies_to(module):
                    continue
                size = workload.size(mode, name)
                # Each run starts from the same collector state, whatever
                # garbage the previous one left: a full collection in the
                # middle of a timed run would land on one column only.
                gc.collect()
                try:
                    figures = _run_once(workload, name, module, size)
                    if figures["checked"] != workload.expected(mode, name):
                        raise BenchError(
                            f"verified {figures['checked']} of "
                            f"{workload.expected(mode, name)}"
                        )
                except Exception as exc:
                    errors[name] = f"{type(exc).__name__}: {exc}"
                    print("!", end="", file=progress, flush=True)
                    continue
                runs.setdefault(name, []).append(figures)
            print(".", end="", file=progress, flush=True)
        results.seconds[workload.key] = perf_counter() - t0
        print(f" {perf_counter() - t0:.1f} s", file=progress, flush=True)
    return results
