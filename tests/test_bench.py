"""The benchmark suite runs and verifies its own counts.

Each test runs the benchmark as a user would, in a fresh interpreter, in
its smoke mode (tiny sizes, one repetition). No figure is ever asserted:
what is checked is that every implementation ran every workload and
verified exactly the messages, asks, tasks and cycles it was given.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import geventio

ALL_KEYS = {"a", "b", "c", "c-floor", "d", "e", "f-same", "f-two", "g", "h", "i"}
ALL_IMPLEMENTATIONS = {"geventio", "pykka", "threads", "gevent-hub"}
BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

# Hard limit on one benchmark process. The smoke run takes a second or two
# on an idle machine; the margin is for a loaded one.
_PROCESS_TIMEOUT = 80

pytestmark = pytest.mark.timeout(_PROCESS_TIMEOUT + 10)


def _run_python(*args: str | Path) -> subprocess.CompletedProcess[str]:
    # The child imports the geventio this test imported (an installed wheel
    # under tox, the work tree in development).
    env = dict(os.environ)
    package_parent = os.path.dirname(os.path.dirname(geventio.__file__))
    env["PYTHONPATH"] = os.pathsep.join(
        path for path in (package_parent, env.get("PYTHONPATH")) if path
    )
    return subprocess.run(
        [sys.executable, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=_PROCESS_TIMEOUT,
        check=False,
        env=env,
    )


def _bench(tmp_path: Path, *args: str) -> dict:
    path = tmp_path / "bench.json"
    result = _run_python("-m", "geventio", "bench", "--smoke", "--json", path, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "targets (issue 6):" in result.stdout
    return json.loads(path.read_text())


def _assert_every_count_verified(document: dict) -> None:
    assert document["verified"] is True
    for key, workload in document["workloads"].items():
        for name, result in workload["results"].items():
            assert "error" not in result, (key, name, result["error"])
            runs = result["repetitions"]
            assert len(runs) == 1, (key, name)
            assert [run["checked"] for run in runs] == [result["expected"]], (key, name)


def test_every_workload_runs_on_every_importable_implementation(tmp_path):
    document = _bench(tmp_path)

    assert set(document["workloads"]) == ALL_KEYS
    for key, workload in document["workloads"].items():
        ran = set(workload["results"])
        if key == "c-floor":  # the operating system's own floor
            assert ran == {"threads"}
        else:
            assert ran | set(document["skipped"]) == ALL_IMPLEMENTATIONS
            assert {"geventio", "threads", "gevent-hub"} <= ran
    _assert_every_count_verified(document)


def test_every_target_of_the_issue_is_reported(tmp_path):
    document = _bench(tmp_path)

    targets = [target["target"] for target in document["targets"]]
    assert len(targets) == 13
    for key in ("a", "b", "c", "d", "e", "f-same", "g", "h", "i"):
        assert any(target.startswith(f"{key} ") for target in targets), key


def test_only_and_implementations_select_what_runs(tmp_path):
    document = _bench(tmp_path, "--only", "a,f", "--implementations", "gevent-hub")

    assert set(document["workloads"]) == {"a", "f-same", "f-two"}
    for workload in document["workloads"].values():
        assert set(workload["results"]) == {"geventio", "gevent-hub"}
    _assert_every_count_verified(document)


def test_sizes_for_the_counts_come_from_the_mode(tmp_path):
    document = _bench(tmp_path, "--only", "b,h", "--implementations", "threads")

    b = document["workloads"]["b"]["results"]["geventio"]
    assert b["expected"] == 4 * b["size"]  # four senders
    h = document["workloads"]["h"]["results"]["geventio"]["repetitions"][0]
    assert h["checked"] == document["workloads"]["h"]["results"]["geventio"]["size"]


def test_an_unknown_workload_is_refused_with_the_letters_allowed():
    result = _run_python("-m", "geventio", "bench", "--only", "a,z")

    assert result.returncode == 2
    assert "workload letters from a,b,c,d,e,f,g,h,i, got 'a,z'" in result.stderr


needs_checkout = pytest.mark.skipif(
    not BENCHMARKS.is_dir(), reason="benchmarks/ is only in a checkout"
)


@needs_checkout
def test_the_checkout_script_runs_the_same_suite(tmp_path):
    path = tmp_path / "bench.json"

    result = _run_python(
        BENCHMARKS / "run.py", "--smoke", "--only", "c,i", "--json", path
    )

    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(path.read_text())
    assert set(document["workloads"]) == {"c", "c-floor", "i"}
    _assert_every_count_verified(document)


@needs_checkout
def test_the_core_script_prints_tell_throughput_and_ask_round_trip():
    result = _run_python(
        BENCHMARKS / "core.py", "--messages", "500", "--asks", "20", "--repeat", "1"
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "tell, 1 plain thread -> 1 task: " in result.stdout
    assert "msg/s (500 messages a run)" in result.stdout
    assert "ask round trip from a plain thread: median " in result.stdout
