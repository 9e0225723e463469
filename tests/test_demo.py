"""``python -m geventio demo`` run as a user would run it.

Each test starts a fresh interpreter that inherits this process's
environment, so the demo runs the same way under tox and in the
monkey-patched test environment (the demo itself never patches anything).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import pytest

import geventio

# Hard limit on one demo process: generous next to a 3 s run, because
# start-up and shutdown on a loaded CI machine take their time too.
_PROCESS_TIMEOUT = 60


def _run_python(*args: str) -> subprocess.CompletedProcess[str]:
    # The child must import the geventio this test imported (an installed
    # wheel under tox, the work tree in development), whatever its working
    # directory; everything else in the environment is passed on unchanged.
    env = dict(os.environ)
    package_parent = os.path.dirname(os.path.dirname(geventio.__file__))
    env["PYTHONPATH"] = os.pathsep.join(
        path for path in (package_parent, env.get("PYTHONPATH")) if path
    )
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=_PROCESS_TIMEOUT,
        check=False,
        env=env,
    )


def _run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    return _run_python("-m", "geventio", "demo", *args)


def _assert_clean_run(result: subprocess.CompletedProcess[str], clients: int) -> None:
    output = result.stdout
    assert result.returncode == 0, output + result.stderr
    assert re.search(r"^server listening on http://127\.0\.0\.1:\d+/$", output, re.M)
    assert re.search(
        r"^t=\d+\.\ds  \[clients(#1)?\] client-0: \d+ req, 0 err, p50 ", output, re.M
    )
    assert "summary:" in output
    for index in range(clients):
        assert re.search(rf"^  client-{index}: \d+ requests, 0 errors", output, re.M)
    total = re.search(r"^  total: (\d+) requests, 0 errors$", output, re.M)
    assert total is not None, output
    assert int(total.group(1)) > 0
    assert re.search(r"^  dead letters: server \d+, clients \d+", output, re.M)
    assert output.rstrip().endswith("\nOK"), output


@pytest.mark.timeout(90)
def test_demo_stalls_a_client_and_recovers_with_one_restart_in_time() -> None:
    result = _run_demo("--duration", "3")

    _assert_clean_run(result, clients=3)
    output, log = result.stdout, result.stderr
    # The stalled task, as the demo names it when it tells it to spin...
    told = re.search(
        r"^t=[\d.]+s  telling client-1 to spin the CPU without yielding "
        r"\(up to 5 s\): <ProxyActor (_ClientTask id=0x[0-9a-f]+) on "
        r"(clients-worker-0) \(bound\)>$",
        output,
        re.M,
    )
    assert told is not None, output
    task, worker = told.groups()
    # ...is the one the blocking warning names, with its stack.
    assert re.search(
        rf"WARNING .*geventio\.blocking: IO system 'clients': worker {worker} "
        rf"blocked for [\d.]+ s \(threshold 0\.100 s\) by {task} ",
        log,
    ), log
    assert "in _spin" in log
    # The failed status check, the replacement, and the clients resuming.
    assert re.search(
        r"WARNING .*supervisor 'clients': status check of <ProxyActor "
        r"_ClientTask id=0x[0-9a-f]+ on clients-worker-0 \(bound\)> not "
        r"answered within 0\.5 s.*; replacing IO system 'clients'",
        log,
    ), log
    assert re.search(
        r"^supervisor: restart 1, the clients now run on IO system 'clients#1'",
        output,
        re.M,
    ), output
    assert re.search(r"^t=[\d.]+s  \[clients#1\] client-0: \d+ req", output, re.M)
    # The summary: one restart, and a recovery within the bound.
    assert re.search(r"^  restarts: 1 \(status check of ", output, re.M), output
    recovery = re.search(
        r"^  recovery: ([\d.]+) s from the stall to the first successful request "
        r"on clients#1 \(bound: interval \+ timeout \+ 0\.5 s = 2 s\)$",
        output,
        re.M,
    )
    assert recovery is not None, output
    assert float(recovery.group(1)) < 1.0 + 0.5 + 0.5
    assert re.search(r"^  clients-worker-0: .*longest loop stall \d{3,}", output, re.M)


@pytest.mark.timeout(90)
def test_demo_without_the_stall_has_no_blocking_warning_and_no_restart() -> None:
    result = _run_demo("--duration", "1.5", "--clients", "2", "--no-stall")

    _assert_clean_run(result, clients=2)
    assert "telling client" not in result.stdout
    assert re.search(r"^  restarts: 0$", result.stdout, re.M), result.stdout
    assert "  recovery: - (no stall)" in result.stdout
    assert "geventio.blocking" not in result.stderr, result.stderr
    assert "[clients#1]" not in result.stdout


@pytest.mark.timeout(90)
def test_demo_prints_one_status_line_per_interval() -> None:
    result = _run_demo("--duration", "1", "--interval", "0.25", "--no-stall")

    assert result.returncode == 0, result.stdout + result.stderr
    ticks = re.findall(r"^t=([\d.]+)s  ", result.stdout, re.M)
    assert ticks == ["0.25", "0.5", "0.75", "1.0"], result.stdout


@pytest.mark.timeout(90)
def test_demo_exits_one_and_says_why_when_requests_fail() -> None:
    # Every client asks for a path the server does not have.
    script = (
        "import geventio._demo as demo\n"
        "demo._PATHS = ('/missing',)\n"
        "raise SystemExit(demo.run_demo(duration=0.5, clients=2, stall=False))\n"
    )

    result = _run_python("-c", script)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "\nFAILED:\n" in result.stdout
    assert re.search(
        r"^  client-1 had \d+ failed requests, the last: "
        r"ValueError: HTTP status 404 for /missing$",
        result.stdout,
        re.M,
    )


@pytest.mark.timeout(90)
def test_demo_exits_one_and_says_why_when_the_port_is_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = _run_demo("--duration", "1", "--port", str(port), "--no-stall")

    assert result.returncode == 1, result.stdout + result.stderr
    assert f"the server did not start listening on 127.0.0.1:{port}" in result.stdout
    assert "Address already in use" in result.stderr
    assert "summary:" in result.stdout


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    ("option", "value", "complaint"),
    [
        ("--duration", "-1", "must be a finite number greater than 0"),
        ("--duration", "soon", "must be a number of seconds"),
        ("--clients", "0", "must be at least 1"),
        ("--clients", "2.5", "must be a whole number"),
        ("--interval", "0", "must be a finite number greater than 0"),
        ("--port", "70000", "must be between 0 and 65535"),
    ],
)
def test_demo_refuses_a_bad_option_with_a_clear_error(
    option: str, value: str, complaint: str
) -> None:
    result = _run_demo(option, value)

    assert result.returncode == 2
    assert f"argument {option}: {complaint}, got '{value}'" in result.stderr
    assert result.stdout == ""


@pytest.mark.timeout(90)
def test_no_command_is_a_usage_error() -> None:
    result = _run_python("-m", "geventio")

    assert result.returncode == 2
    assert "usage:" in result.stderr
