"""``python -m geventio bench``: geventio measured side by side with its
peers, in one run.

The workloads are those of issue 6 (a to i); each runs on geventio and on
every peer that is importable: Pykka (one OS thread per actor), plain
threads with :class:`queue.Queue`, and a hand-written gevent hub on a native
thread (a deque and one async watcher, no framework), which is the limit
geventio is held to. Every implementation checks that each message arrived
once and in order, and the runner checks the counts, so a figure is never
that of work left undone.

Modules: :mod:`.workloads` (what is measured, sizes, targets),
:mod:`.runner` (running, repetitions), :mod:`.report` (the table),
:mod:`.memory` (workload h, in a subprocess), :mod:`.common` (what the
implementations share) and one ``impl_*`` module per implementation.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from .workloads import IMPLEMENTATIONS, LETTERS, MODES

__all__ = [
    "IMPLEMENTATIONS",
    "LETTERS",
    "parse_implementations",
    "parse_workloads",
    "run_bench",
]


def _parse_list(text: str, allowed: tuple[str, ...] | str, what: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    wrong = [item for item in items if item not in allowed]
    if wrong or not items:
        raise argparse.ArgumentTypeError(
            f"must be a comma-separated list of {what} from "
            f"{','.join(allowed)}, got {text!r}"
        )
    return items


def parse_workloads(text: str) -> str:
    """Parse ``--only``: workload letters such as ``a,c,f``.

    Raises:
        argparse.ArgumentTypeError: an unknown letter, or none.
    """
    return "".join(_parse_list(text, tuple(LETTERS), "workload letters"))


def parse_implementations(text: str) -> tuple[str, ...]:
    """Parse ``--implementations``: names such as ``geventio,gevent-hub``.

    geventio is always run, since every ratio needs it.

    Raises:
        argparse.ArgumentTypeError: an unknown name, or none.
    """
    names = set(_parse_list(text, IMPLEMENTATIONS, "implementations"))
    return tuple(
        name for name in IMPLEMENTATIONS if name in names or name == "geventio"
    )


def run_bench(
    *,
    mode: str = "full",
    only: str = LETTERS,
    implementations: tuple[str, ...] = IMPLEMENTATIONS,
    repetitions: int | None = None,
    json_path: str | None = None,
    out: TextIO | None = None,
    progress: TextIO | None = None,
) -> int:
    """Run the benchmark and print its report.

    Call it from a plain thread with no gevent hub (the main thread of a
    program, as the command line does); it blocks that thread for the whole
    run: under a minute in ``quick`` mode, a few minutes in ``full``.

    Args:
        mode: ``full``, ``quick`` (smaller sizes, fewer repetitions) or
            ``smoke`` (tiny sizes, one repetition: proves every
            implementation runs and verifies; its figures mean nothing).
        only: the workload letters to run.
        implementations: which implementations to run; unimportable peers
            are skipped and reported.
        repetitions: repetitions per workload instead of the mode's.
        json_path: also write every figure, per repetition, to this file.
        out: where the report goes (standard output by default).
        progress: where progress goes (standard error by default).

    Returns:
        0 if every run was verified, 1 if any failed verification. Targets
        that do not hold are printed as FAIL without changing the status.

    Raises:
        ValueError: an unknown mode.
    """
    from .report import check_targets, machine, print_report
    from .runner import run_workloads

    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    out = sys.stdout if out is None else out
    progress = sys.stderr if progress is None else progress
    info = machine()
    results = run_workloads(mode, only, implementations, repetitions, progress)
    verified = print_report(results, info, out)
    if json_path is not None:
        document: dict[str, Any] = {
            "machine": info,
            **results.to_json(),
            "targets": check_targets(results),
            "verified": verified,
        }
        with open(json_path, "w") as file:
            json.dump(document, file, indent=2)
            file.write("\n")
    return 0 if verified else 1
