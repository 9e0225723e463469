"""IOSystem: starting, placing tasks, shutting down, and what it leaves."""

import logging
import subprocess
import sys
import textwrap

import pytest
from helpers import WAIT, Recorder, open_fds, os_threads, run_in_thread, wait_until

import geventio
from geventio import IOSystem, StatusCheck, Task, Worker, _native


class Echo(Task):
    def receive(self, message):
        self.sender.tell(message)


class Sink(Task):
    def receive(self, message):
        pass


class WhereAmI(Task):
    def receive(self, message):
        self.sender.tell(self.worker)


@pytest.mark.parametrize("workers", [0, -1])
def test_a_non_positive_worker_count_is_a_value_error_naming_it(workers):
    with pytest.raises(
        ValueError, match=f"workers must be a positive int, got {workers}"
    ):
        IOSystem("bad", workers=workers)


@pytest.mark.parametrize("workers", ["2", 2.5, True])
def test_a_worker_count_that_is_not_an_int_is_a_type_error_naming_it(workers):
    with pytest.raises(TypeError, match="workers must be a positive int"):
        IOSystem("bad", workers=workers)


@pytest.mark.parametrize("name", [None, 3, b"x"])
def test_a_name_that_is_not_a_str_is_a_type_error(name):
    with pytest.raises(TypeError, match="name must be a str"):
        IOSystem(name, workers=1)


def test_an_empty_name_is_a_value_error():
    with pytest.raises(ValueError, match="name must not be empty"):
        IOSystem("", workers=1)


def test_workers_are_named_running_threads_with_ready_hubs(make_io):
    io = make_io("named", workers=3)

    assert io.name == "named"
    assert io.is_running
    assert isinstance(io.workers, tuple)
    assert [w.name for w in io.workers] == [f"named-worker-{i}" for i in range(3)]
    assert all(isinstance(w, Worker) and w.is_running for w in io.workers)
    assert len({w.ident for w in io.workers}) == 3
    assert all(w.hub is not None for w in io.workers)
    assert "named-worker-1" in repr(io.workers[1])


def test_the_default_worker_count_is_the_cpu_count(make_io):
    import os

    assert len(make_io("cpus", workers=None).workers) == (os.cpu_count() or 1)


def test_tasks_are_placed_round_robin(make_io):
    io = make_io("rr", workers=3)

    placed = [WhereAmI.start(io).ask(None, timeout=WAIT) for _ in range(6)]

    assert placed == list(io.workers) * 2


def test_shutdown_is_idempotent_and_stops_every_thread(make_io):
    before = os_threads()
    io = IOSystem("idem", workers=2)
    assert os_threads() == before + 3  # two workers, one blocking monitor

    assert io.shutdown() == []
    assert io.shutdown() == []
    assert not io.is_running
    assert not any(w.is_running for w in io.workers)


def test_shutdown_from_another_thread(make_io):
    io = IOSystem("other", workers=2)
    proxy = Echo.start(io)

    assert run_in_thread(lambda: io.shutdown(timeout=WAIT)) == []
    assert not proxy.is_alive


def test_shutdown_from_a_task_of_the_same_system_starts_it_and_returns():
    io = IOSystem("self", workers=2)
    log = Recorder()

    class Stopper(Task):
        def receive(self, message):
            log.append(("shutdown returned", self.io.shutdown(timeout=WAIT)))

        def on_unbind(self):
            log.append(("on_unbind", self.worker.name))

    Stopper.start(io).tell("stop everything")
    Stopper.start(io)

    items = log.wait_for(3)
    assert items[0] == ("shutdown returned", [])
    assert sorted(items[1:]) == [
        ("on_unbind", "self-worker-0"),
        ("on_unbind", "self-worker-1"),
    ]
    assert io.shutdown(timeout=WAIT) == []  # now from outside: joins all


def test_the_context_manager_shuts_down_on_exit():
    unbound = Recorder()

    class Note(Task):
        def on_unbind(self):
            unbound.append("on_unbind")

    with IOSystem("ctx", workers=1) as io:
        Note.start(io).ask(StatusCheck(), timeout=WAIT)

    assert not io.is_running
    assert unbound.items == ["on_unbind"]


def test_shutdown_with_a_timeout_reports_a_worker_that_did_not_stop(caplog):
    gate = _native.allocate_lock()
    gate.acquire()
    entered = Recorder()

    class Stuck(Task):
        def receive(self, message):
            entered.append(message)
            gate.acquire()  # blocks the whole hub, not just a greenlet

    io = IOSystem("stuck", workers=2)
    Stuck.start(io.workers[1]).tell("hold")
    entered.wait_for(1)

    with caplog.at_level(logging.WARNING, logger="geventio"):
        start = _native.monotonic()
        stuck = io.shutdown(timeout=0.2)
        elapsed = _native.monotonic() - start

    assert stuck == [io.workers[1]]
    assert elapsed < WAIT
    assert any("stuck-worker-1" in r.getMessage() for r in caplog.records)
    gate.release()
    assert io.shutdown(timeout=WAIT) == []


@pytest.mark.timeout(120)
def test_a_hundred_start_and_shutdown_cycles_leak_no_thread_or_descriptor():
    # Warm up once so lazily created process-wide state is not counted.
    with IOSystem("warm", workers=1) as io:
        Echo.start(io).ask("x", timeout=WAIT)
    threads, fds = os_threads(), open_fds()

    for _ in range(100):
        with IOSystem("cycle", workers=1) as io:
            Echo.start(io).ask("x", timeout=WAIT)

    # <=: a thread of an earlier test may still have been exiting at the start.
    wait_until(lambda: os_threads() <= threads, what="worker threads to exit")
    assert open_fds() == fds


def test_stats_reports_one_snapshot_per_worker(make_io):
    io = make_io("stats", workers=2)
    proxy = Echo.start(io.workers[0])
    for i in range(10):
        proxy.ask(i, timeout=WAIT)
    proxy.stop()
    proxy.tell("dead")

    first, second = io.stats()
    assert first["worker"] == "stats-worker-0"
    assert first["delivered"] == 10
    assert first["dead_letters"] == 1
    assert second["delivered"] == 0 and second["tasks"] == 0


def test_a_burst_of_messages_costs_one_wake_up_not_one_each(io):
    gate = _native.allocate_lock()
    gate.acquire()
    entered = Recorder()

    class Hold(Task):
        def receive(self, message):
            entered.append(message)
            gate.acquire()

    Hold.start(io).tell("hold")
    entered.wait_for(1)  # the hub is now blocked
    counter = Sink.start(io)
    wakeups = io.workers[0]._inbox.wakeups
    for i in range(1000):
        counter.tell(i)
    gate.release()
    counter.ask(StatusCheck(), timeout=WAIT)

    # One wake-up for the start, one for the burst, one for the ask.
    assert io.workers[0]._inbox.wakeups - wakeups <= 3


def _run_python(code, timeout=60):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.timeout(90)
@pytest.mark.parametrize("shutdown", ["never", "atexit"])
def test_a_program_that_never_shuts_down_still_exits_and_unbinds(shutdown):
    result = _run_python(
        f"""
        import atexit, geventio

        class Note(geventio.Task):
            def on_unbind(self):
                print("on_unbind ran", flush=True)

        io = geventio.IOSystem("exit", workers=2)
        Note.start(io).ask(geventio.StatusCheck(), timeout=10)
        if {shutdown!r} == "atexit":
            atexit.register(io.shutdown)
        print("main done", flush=True)
        """
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["main done", "on_unbind ran"]


def test_public_names_match_the_contract():
    assert sorted(geventio.__all__) == sorted(
        [
            "AskFuture",
            "AskTimeout",
            "GeventIOError",
            "IOSystem",
            "IOSystemShutdown",
            "PoisonPill",
            "ProxyActor",
            "ProxyStopped",
            "StallInterrupted",
            "StatusCheck",
            "Supervisor",
            "Task",
            "Terminated",
            "Worker",
            "WouldDeadlock",
            "interfaces",
        ]
    )
    assert issubclass(geventio.AskTimeout, TimeoutError)
    for name in ("AskTimeout", "ProxyStopped", "IOSystemShutdown", "WouldDeadlock"):
        assert issubclass(getattr(geventio, name), geventio.GeventIOError)


def test_a_shutdown_from_a_task_leaves_no_thread_behind():
    before = os_threads()
    io = IOSystem("selfstop", workers=2)

    class Stopper(Task):
        def receive(self, message):
            self.io.shutdown()

    Stopper.start(io).tell("stop")

    # Nobody outside calls shutdown(): the workers and the service thread
    # must all go by themselves.
    assert all(w._wait_stopped(WAIT) for w in io.workers)
    wait_until(lambda: os_threads() <= before, what="every thread of the system")
