"""The printed report: the machine, the table of medians with the ratios
geventio/peer, and the targets of issue 6 with PASS or FAIL."""

from __future__ import annotations

import os
import platform
from typing import Any, TextIO

from .runner import Results
from .workloads import ROWS, TARGETS, Row

__all__ = ["check_targets", "machine", "print_report"]

_RATIO_NAMES = {"pykka": "/pykka", "threads": "/threads", "gevent-hub": "/hub"}


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import gevent
    import greenlet

    import geventio

    from . import impl_pykka

    model = "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "cpus": usable,
        "cpu_model": model,
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "geventio": geventio.__version__,
        "gevent": gevent.__version__,
        "greenlet": greenlet.__version__,
        "gevent_loop": str(gevent.config.loop.__module__),
        "pykka": impl_pykka.version(),
    }


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("msg/s", "tasks/s"):
        if value >= 1e6:
            return f"{value / 1e6:.2f}M"
        if value >= 1e4:
            return f"{value / 1e3:.0f}k"
        return f"{value / 1e3:.1f}k"
    if unit == "count":
        return f"{value:.2f}" if value % 1 else f"{value:.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or theirs is None or theirs == 0:
        return None
    return ours / theirs


def check_targets(results: Results) -> list[dict[str, Any]]:
    """Each target of the run: its value, and whether it held.

    Only the targets of the workloads that ran are listed; one is left
    undecided (``"pass": None``) when its peer was skipped or failed.
    """
    checked = []
    keys = {workload.key for workload in results.workloads}
    for target in TARGETS:
        if target.key not in keys:
            continue
        ours = results.median(target.key, "geventio", target.figure)
        if target.peer is None:
            value = ours
        else:
            value = _ratio(ours, results.median(target.key, target.peer, target.figure))
        checked.append(
            {
                "target": target.describe(),
                "value": value,
                "pass": None if value is None else target.holds(value),
            }
        )
    return checked


def _row_line(row: Row, results: Results, names: tuple[str, ...]) -> str:
    values = {name: results.median(row.key, name, row.figure) for name in names}
    cells = [f"{row.label:33}", f"{row.unit:8}"]
    cells += [f"{_number(values[name], row.unit):>10}" for name in names]
    if row.unit != "count":
        for name in names[1:]:
            ratio = _ratio(values.get("geventio"), values[name])
            cells.append(f"{'-' if ratio is None else format(ratio, '.3g'):>9}")
    return " ".join(cells).rstrip()


def print_report(results: Results, info: dict[str, Any], out: TextIO) -> bool:
    """Print the report; return True when every run was verified.

    Targets that do not hold are reported as FAIL but do not make the run
    fail: on a loaded machine, or in the smoke mode, they say little.
    """
    names = tuple(n for n in results.implementations if n not in results.skipped)
    keys = {workload.key for workload in results.workloads}
    print(file=out)
    print(
        f"machine: {info['cpus']} CPUs, {info['cpu_model']}; {info['python']}; "
        f"gevent {info['gevent']} ({info['gevent_loop']}), greenlet "
        f"{info['greenlet']}; pykka {info['pykka'] or 'not installed'}",
        file=out,
    )
    print(
        f"mode: {results.mode}; medians over the repetitions; ratios are "
        "geventio/peer (above 1 is better for rates, below 1 for times and sizes)",
        file=out,
    )
    for name, reason in results.skipped.items():
        print(f"skipped {name}: {reason}", file=out)
    print(file=out)
    header = [f"{'workload':33}", f"{'unit':8}"]
    header += [f"{name:>10}" for name in names]
    header += [f"{_RATIO_NAMES.get(name, name):>9}" for name in names[1:]]
    print(" ".join(header), file=out)
    for row in ROWS:
        if row.key in keys:
            print(_row_line(row, results, names), file=out)
    if "h" in keys:
        sizes = ", ".join(
            f"{name} {w.size(results.mode, name):,}"
            for w in results.workloads
            if w.key == "h"
            for name in names
        )
        print(f"\nh: idle tasks per process: {sizes}", file=out)
    verified = True
    for key, errors in results.errors.items():
        for name, error in errors.items():
            verified = False
            print(f"FAILED {key} on {name}: {error}", file=out)
    print("\ntargets (issue 6):", file=out)
    for target in check_targets(results):
        verdict = {True: "PASS", False: "FAIL", None: "----"}[target["pass"]]
        value = "not measured" if target["value"] is None else f"{target['value']:.3g}"
        print(f"  {verdict}  {target['target']:40} {value}", file=out)
    return verified
