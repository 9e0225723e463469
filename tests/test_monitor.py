"""Blocking detection and shutting down past a stuck worker."""

import logging

import gevent
import pytest
import zope.event
from gevent.events import EventLoopBlocked
from helpers import WAIT, Recorder, wait_until

from geventio import IOSystem, StallInterrupted, StatusCheck, Task, _native


class _Capture(logging.Handler):
    def __init__(self, recorder, level):
        super().__init__(level)
        self.recorder = recorder

    def emit(self, record):
        self.recorder.append(record)


@pytest.fixture
def warnings_logged():
    """Records every WARNING or worse logged under ``geventio``."""
    records = Recorder()
    handler = _Capture(records, logging.WARNING)
    logger = logging.getLogger("geventio")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


class Spinner(Task):
    """Holds its worker's loop in a pure-Python loop until released."""

    def __init__(self, spinning):
        super().__init__()
        self.spinning = spinning
        self.release = False

    def receive(self, message):
        self.spinning.append(self)
        while not self.release:
            pass


def test_a_task_that_blocks_its_loop_is_detected_and_named(make_io, warnings_logged):
    io = make_io("blocky", workers=1)
    spinning = Recorder()
    Spinner.start(io, spinning).tell("spin")
    task = spinning.wait_for(1)[0]

    start = _native.monotonic()
    [record] = warnings_logged.wait(lambda r: len(r) >= 1, timeout=WAIT)[:1]
    detected_after = _native.monotonic() - start
    task.release = True

    message = record.getMessage()
    assert record.name == "geventio.blocking"
    assert "blocky-worker-0" in message
    assert "Spinner" in message and hex(id(task._cell)) in message
    assert "while not self.release" in message  # the blocked stack
    # threshold (0.1) + one check interval (0.05), with room for a slow CI
    assert detected_after < 0.15 + 1.0


def test_a_stall_is_reported_once_per_episode_and_counted_in_stats(
    make_io, warnings_logged
):
    io = make_io("episodes", workers=1)
    spinning = Recorder()
    proxy = Spinner.start(io, spinning)

    for episode in (1, 2):
        proxy.tell("spin")
        task = spinning.wait_for(episode)[-1]
        warnings_logged.wait(lambda r, n=episode: len(r) >= n)
        task.release = True
        proxy.ask(StatusCheck(), timeout=WAIT)
        task.release = False
        # The heartbeat that ends the episode counts it; it may run a turn
        # of the loop after the ask's reply.
        wait_until(lambda n=episode: io.stats()[0]["stalls"] == n, what="the count")

    [stats] = io.stats()
    assert len(warnings_logged) == 2
    assert stats["stalls"] == 2
    assert stats["max_stall"] >= 0.1


def test_a_task_that_only_sleeps_cooperatively_is_never_reported(
    make_io, warnings_logged
):
    io = make_io("polite", workers=1)
    ticks = Recorder()

    class Napper(Task):
        def run(self):
            for i in range(40):  # ~2 s of cooperative sleeping: 40 checks
                gevent.sleep(0.05)
                ticks.append(i)

    Napper.start(io)
    ticks.wait_for(40)

    assert len(warnings_logged) == 0
    assert io.stats()[0]["stalls"] == 0


def test_the_blocking_report_is_published_as_gevents_event(make_io):
    events = Recorder()

    def subscriber(event):
        if isinstance(event, EventLoopBlocked):
            events.append(event)

    zope.event.subscribers.append(subscriber)
    try:
        io = make_io("evented", workers=1)
        spinning = Recorder()
        Spinner.start(io, spinning).tell("spin")
        task = spinning.wait_for(1)[0]
        [event] = events.wait_for(1)
        task.release = True
    finally:
        zope.event.subscribers.remove(subscriber)

    assert event.hub is io.workers[0].hub
    assert event.blocking_time == 0.1
    assert any("while not self.release" in line for line in event.info)


def test_blocking_detection_can_be_turned_off_or_tuned(make_io):
    assert make_io("off").blocking_threshold == 0.1
    io = IOSystem("off", workers=1, blocking_threshold=None)
    try:
        assert io.stats()[0]["loop_lag"] == 0.0
    finally:
        io.shutdown()
    with pytest.raises(ValueError, match="blocking_threshold must be positive"):
        IOSystem("bad", workers=1, blocking_threshold=0)
    with pytest.raises(TypeError, match="blocking_threshold"):
        IOSystem("bad", workers=1, blocking_threshold="1")


def test_shutdown_interrupts_a_pure_python_busy_loop_within_its_timeout(caplog):
    io = IOSystem("busy", workers=1)
    spinning = Recorder()
    failures = Recorder()

    class Reporter(Spinner):
        def on_failure(self, exc):
            failures.append(exc)

    Reporter.start(io, spinning).tell("spin")
    spinning.wait_for(1)

    with caplog.at_level(logging.DEBUG, logger="geventio"):
        start = _native.monotonic()
        stuck = io.shutdown(timeout=1.0)
        elapsed = _native.monotonic() - start

    assert stuck == []
    assert elapsed < 1.0 + 0.5
    assert isinstance(failures.wait_for(1)[0], StallInterrupted)
    assert any(
        "StallInterrupted in stalled busy-worker-0" in r.getMessage()
        for r in caplog.records
    )


def test_a_worker_stuck_in_a_c_call_is_abandoned_and_reported(caplog):
    io = IOSystem("c-stuck", workers=2)
    gate = _native.allocate_lock()
    gate.acquire()
    entered = Recorder()

    class StuckInC(Task):
        def receive(self, message):
            entered.append(message)
            gate.acquire()  # a native wait: no async exception reaches it

    StuckInC.start(io.workers[1]).tell("hold")
    entered.wait_for(1)

    with caplog.at_level(logging.WARNING, logger="geventio"):
        start = _native.monotonic()
        stuck = io.shutdown(timeout=0.5)
        elapsed = _native.monotonic() - start

    assert stuck == [io.workers[1]]
    assert elapsed < 0.5 + 0.5
    assert io.stats()[1]["abandoned"] is True
    report = [r.getMessage() for r in caplog.records if "abandoned" in r.getMessage()]
    assert report and "c-stuck-worker-1" in report[0] and "StuckInC" in report[0]
    gate.release()  # the abandoned worker then finishes its own shutdown
    assert io.workers[1]._wait_stopped(WAIT)
