"""Behaviours pinned down after a fresh reader attacked the contract."""

import logging
import os

import gevent
import gevent.event
import pytest
from greenlet import GreenletExit
from helpers import WAIT, Recorder, wait_until

from geventio import GeventIOError, IOSystem, ProxyStopped, StatusCheck, Task, _native
from geventio._mailbox import OneShot
from geventio.testing import Probe

MONKEY = os.environ.get("GEVENTIO_TEST_MONKEY") == "1"


class Echo(Task):
    def receive(self, message):
        self.sender.tell(message)


class Boom(Task):
    def receive(self, message):
        raise RuntimeError("fatal")


def test_shutdown_from_an_on_stopped_callback_returns_and_so_do_later_ones():
    io = IOSystem("from-callback", workers=1)
    results = Recorder()
    proxy = Boom.start(io)
    proxy.on_stopped(lambda t: results.append(io.shutdown(timeout=2)))

    proxy.tell("x")

    assert results.wait_for(1) == [[]]
    assert io.shutdown(timeout=2) == []


def test_a_greenlet_exit_raised_by_receive_is_a_failure_of_the_task(io, task_errors):
    class Quits(Task):
        def receive(self, message):
            if message == "quit":
                raise gevent.GreenletExit()
            self.sender.tell(message)

    proxy = Quits.start(io)

    with pytest.raises(GeventIOError, match="GreenletExit"):
        proxy.ask("quit", timeout=WAIT)
    assert proxy.join(WAIT)
    assert not proxy.is_alive
    assert task_errors()


def test_a_task_failing_in_its_constructor_says_why_to_askers(io, task_errors):
    class NeedsArgument(Task):
        def __init__(self, required):
            super().__init__()

    proxy = NeedsArgument.start(io)

    with pytest.raises(ProxyStopped, match="failed") as info:
        proxy.ask("x", timeout=WAIT)
    assert isinstance(info.value.__cause__, TypeError)


def test_a_shutdown_timeout_cuts_slow_hooks_short_and_on_unbind_still_runs(caplog):
    io = IOSystem("slow-hooks", workers=1)
    unbound = Recorder()

    class Slow(Task):
        def shutdown_request(self):
            gevent.sleep(100)  # cooperative, but far too long

        def on_unbind(self):
            unbound.append("on_unbind")

    Slow.start(io).ask(StatusCheck(), timeout=WAIT)

    assert io.shutdown(timeout=1.0) == []
    assert unbound.items == ["on_unbind"]


def test_an_on_unbind_that_never_ends_is_cut_short_by_a_shutdown_timeout():
    io = IOSystem("slow-unbind", workers=1)

    class Stubborn(Task):
        def on_unbind(self):
            gevent.sleep(100)

    Stubborn.start(io).ask(StatusCheck(), timeout=WAIT)

    assert io.shutdown(timeout=1.0) == []


def test_a_blocking_call_in_progress_does_not_break_a_timed_shutdown():
    io = IOSystem("blocking-call", workers=1)
    gate = _native.allocate_lock()
    gate.acquire()
    entered = Recorder()

    class Offload(Task):
        def run(self):
            self.run_blocking(lambda: (entered.append(1), gate.acquire()))

    Offload.start(io)
    entered.wait_for(1)

    # The pool thread holds the worker's teardown; nothing is interrupted
    # in framework code, and the worker ends once the call returns.
    assert io.shutdown(timeout=0.5) == [io.workers[0]]
    gate.release()
    assert io.workers[0]._wait_stopped(WAIT)
    assert "stopped" in repr(io.workers[0])


def test_a_name_is_free_again_as_soon_as_its_task_is_stopped(io):
    class SlowExit(Task):
        def on_unbind(self):
            gevent.sleep(0.2)

    old = SlowExit.start_named("svc", io)
    old.ask(StatusCheck(), timeout=WAIT)
    old.stop()

    assert io.find("svc") is None
    new = Echo.start_named("svc", io)
    assert io.find("svc") is new
    assert old.join(WAIT)
    assert io.find("svc") is new  # the old task's end does not free it


@pytest.mark.parametrize("timeout", [float("nan"), "inf"])
def test_a_nonsense_timeout_is_refused_before_anything_is_sent(io, timeout):
    got = Recorder()

    class Count(Task):
        def receive(self, message):
            got.append(message)

    proxy = Count.start(io)
    with pytest.raises((TypeError, ValueError), match="timeout"):
        proxy.ask("x", timeout=timeout)
    with pytest.raises((TypeError, ValueError), match="timeout"):
        io.shutdown(timeout=timeout)

    assert proxy.ask(StatusCheck(), timeout=WAIT)["handled"] == 0
    assert got.items == []


def test_an_infinite_or_huge_timeout_waits_for_ever(io):
    proxy = Echo.start(io)

    assert proxy.ask("x", timeout=float("inf")) == "x"
    assert proxy.ask("y", timeout=1e300) == "y"


def test_a_probe_cannot_be_watched_and_a_stopped_probe_drops_messages(io):
    probe = Probe()
    errors = Recorder()

    class WatchProbe(Task):
        def receive(self, message):
            try:
                self.watch(probe)
            except TypeError as exc:
                errors.append(str(exc))

    WatchProbe.start(io).tell("go")
    assert "task's ProxyActor" in errors.wait_for(1)[0]

    probe.stop()
    probe.tell("lost")
    assert probe.dropped == 1
    probe.expect_no_message(0.01)


def test_broadcast_refuses_a_cls_that_is_not_a_class(io):
    with pytest.raises(TypeError, match="cls must be a class"):
        io.broadcast("x", cls=5)


@pytest.mark.parametrize("where", ["__init__", "on_bind", "shutdown_request"])
def test_a_greenlet_exit_raised_by_a_hook_is_a_failure_not_a_zombie(make_io, where):
    make_io.expect_failures()
    io = make_io("hooks")
    unbound = Recorder()

    class Quits(Task):
        def __init__(self):
            super().__init__()
            if where == "__init__":
                raise gevent.GreenletExit()

        def on_bind(self):
            if where == "on_bind":
                raise gevent.GreenletExit()

        def shutdown_request(self):
            raise gevent.GreenletExit()

        def on_unbind(self):
            unbound.append("on_unbind")

    proxy = Quits.start(io)
    if where == "shutdown_request":
        proxy.ask(StatusCheck(), timeout=WAIT)
        proxy.stop()

    assert proxy.join(WAIT)
    assert not proxy.is_alive
    assert unbound.items == ([] if where == "__init__" else ["on_unbind"])
    assert io.shutdown() == []  # no zombie left to wait for


def test_a_timed_shutdown_does_not_wait_for_a_slow_callback_beyond_its_timeout():
    gate = _native.allocate_lock()
    gate.acquire()
    io = IOSystem("slow-callback", workers=1)
    proxy = Echo.start(io)
    proxy.on_stopped(lambda t: gate.acquire(True, WAIT))  # holds the service thread
    proxy.stop()
    assert proxy.join(WAIT)

    start = _native.monotonic()
    assert io.shutdown(timeout=0.5) == []
    assert _native.monotonic() - start < 0.5 + 0.5
    gate.release()


def test_an_abandoned_workers_proxies_stop_and_a_later_untimed_shutdown_returns():
    gate = _native.allocate_lock()
    gate.acquire()
    entered = Recorder()

    class Stuck(Task):
        def receive(self, message):
            entered.append(message)
            gate.acquire()  # a C call: nothing can interrupt it

    io = IOSystem("abandon", workers=1)
    stuck = Stuck.start(io)
    idle = Echo.start(io)
    stuck.tell("hold")
    entered.wait_for(1)

    assert io.shutdown(timeout=0.4) == [io.workers[0]]
    assert not stuck.is_alive and not idle.is_alive
    with pytest.raises(ProxyStopped):
        idle.ask("anyone?", timeout=WAIT)
    idle.tell("late")
    assert io.dead_letters >= 1
    assert io.shutdown() == [io.workers[0]]  # given up on: no wait for ever
    gate.release()
    assert io.workers[0]._wait_stopped(WAIT)
    assert io.shutdown() == []


def test_an_expired_ask_future_settles_by_itself_and_lets_go_of_its_handle(io):
    class Never(Task):
        def receive(self, message):
            pass

    proxy = Never.start(io)
    settled = Recorder()

    future = proxy.ask_future("q", timeout=0.05)
    future.add_done_callback(lambda f: settled.append(type(f.exception(0)).__name__))

    assert settled.wait_for(1) == ["AskTimeout"]
    assert future.done()
    for _ in range(200):
        proxy.ask_future("q", timeout=0.001)
    wait_until(lambda: not proxy._cell.asks, what="expired asks to be let go of")


def test_a_subscriber_raising_system_exit_ends_neither_a_thread_nor_a_worker(io):
    import zope.event

    from geventio.events import ITaskBound, subscribe_on_hub, unsubscribe_on_hub

    seen = Recorder()

    def rude(event):
        raise SystemExit("rude subscriber")

    def polite(event):
        if ITaskBound.providedBy(event):
            seen.append(event.proxy)

    zope.event.subscribers.extend([polite, rude])  # zope.event stops at a raise
    subscribe_on_hub(rude)
    try:
        first = Echo.start(io)
        second = Echo.start(io)
        assert second.ask("still working", timeout=WAIT) == "still working"
        assert seen.wait_for(2) == [first, second]
    finally:
        unsubscribe_on_hub(rude)
        zope.event.subscribers.remove(rude)
        zope.event.subscribers.remove(polite)


def test_a_stop_while_a_failure_is_being_logged_leaves_it_a_failure(io, task_errors):
    # After patch_all() a logging handler's lock is a gevent lock: logging
    # the failure may switch away while another thread logs, and a stop
    # handled meanwhile used to kill the failing greenlet, losing the
    # failure (no on_failure, no TaskFailed, "stopped" with no error).
    entered, gate = OneShot(), OneShot()

    class Holding(logging.Handler):
        def emit(self, record):
            if record.getMessage().startswith("task ") and not entered.done:
                entered.set()
                gate.wait(WAIT)  # blocks only this greenlet, as a gevent lock

    hooks = Recorder()

    class Fails(Task):
        def receive(self, message):
            raise ValueError("the real failure")

        def on_failure(self, exc):
            hooks.append(exc)

    handler = Holding()
    logger = logging.getLogger("geventio.task")
    logger.addHandler(handler)
    try:
        proxy, echo = Fails.start(io), Echo.start(io)
        ended = Recorder()
        proxy.on_stopped(ended.append)
        future = proxy.ask_future("go")
        assert entered.wait(WAIT)
        proxy.stop()
        # Queued after the stop, so handled once the stop was.
        assert echo.ask("after the stop", timeout=WAIT) == "after the stop"
    finally:
        gate.set()
        logger.removeHandler(handler)

    with pytest.raises(ValueError, match="the real failure"):
        future.result(WAIT)
    terminated = ended.wait_for(1)[0]
    assert terminated.reason == "failed"
    assert isinstance(terminated.error, ValueError)
    assert [type(e) for e in hooks.wait_for(1)] == [ValueError]


def test_an_on_failure_raising_greenlet_exit_still_lets_the_task_end(io, task_errors):
    from geventio.events import IHookFailed, subscribe_on_hub, unsubscribe_on_hub

    calls, hooks = Recorder(), Recorder()

    class QuietExit(Task):
        def receive(self, message):
            raise ValueError("first")

        def on_failure(self, exc):
            calls.append(type(exc))
            raise GreenletExit  # not a kill: a hook failure

        def on_unbind(self):
            calls.append("on_unbind")

    subscribe_on_hub(hooks.append)
    try:
        proxy = QuietExit.start(io)
        proxy.tell("go")
        assert proxy.join(WAIT)
    finally:
        unsubscribe_on_hub(hooks.append)
    assert calls.items == [ValueError, "on_unbind"]
    assert [e.hook for e in hooks.items if IHookFailed.providedBy(e)] == ["on_failure"]
    assert proxy._cell.terminated().reason == "failed"


def test_a_second_failure_while_the_first_is_reported_changes_nothing(io, task_errors):
    calls = Recorder()
    second_failed = OneShot()

    class Twice(Task):
        def receive(self, message):
            self.spawn(self.second)
            raise ValueError("first")

        def second(self):
            try:
                raise KeyError("second")
            finally:
                gevent.spawn(second_failed.set)  # once this greenlet ended

        def on_failure(self, exc):
            calls.append(("start", type(exc)))
            second_failed.wait(WAIT)  # the second failure comes meanwhile
            calls.append(("end", type(exc)))

        def on_unbind(self):
            calls.append("on_unbind")

    proxy = Twice.start(io)
    ended = Recorder()
    proxy.on_stopped(ended.append)
    with pytest.raises(ValueError, match="first"):
        proxy.ask("go", timeout=WAIT)
    assert proxy.join(WAIT)
    assert calls.items == [("start", ValueError), ("end", ValueError), "on_unbind"]
    terminated = ended.wait_for(1)[0]
    assert terminated.reason == "failed" and isinstance(terminated.error, ValueError)
    logged = [r.exc_info[1] for r in task_errors() if r.exc_info]
    assert {type(e) for e in logged} >= {ValueError, KeyError}


def test_unbind_kills_the_calling_greenlet_when_it_next_waits(io):
    log = Recorder()

    class Quits(Task):
        def receive(self, message):
            self.unbind()
            log.append("unbind() returned")
            gevent.event.Event().wait(WAIT)  # the next wait: killed there
            log.append("still running after the wait")

        def on_unbind(self):
            log.append("on_unbind")

    proxy = Quits.start(io)
    proxy.tell("go")
    assert proxy.join(WAIT)
    assert log.items == ["unbind() returned", "on_unbind"]


def test_the_handled_count_is_right_while_a_receive_waits(io):
    from geventio.testing import wait_handled

    gate = OneShot()

    class Slow(Task):
        def receive(self, message):
            if message == "slow":
                gate.wait(WAIT)

    proxy = Slow.start(io)
    for message in ("a", "b", "slow"):
        proxy.tell(message)
    try:
        wait_handled(proxy, 2, timeout=WAIT)
        assert io.stats()[0]["delivered"] == 2
    finally:
        gate.set()
    wait_handled(proxy, 3, timeout=WAIT)


def test_a_timed_shutdown_that_cuts_a_failure_report_short_says_so(caplog):
    caplog.set_level(logging.WARNING, logger="geventio")
    entered, gate = OneShot(), OneShot()

    class Holding(logging.Handler):
        def emit(self, record):
            if record.getMessage().startswith("task ") and not entered.done:
                entered.set()
                gate.wait(WAIT)

    class Fails(Task):
        def receive(self, message):
            raise ValueError("never reported in full")

    handler = Holding()
    logger = logging.getLogger("geventio.task")
    logger.addHandler(handler)
    io = IOSystem("cut", workers=1)
    try:
        proxy = Fails.start(io)
        future = proxy.ask_future("go")
        assert entered.wait(WAIT)
        assert io.shutdown(timeout=0.5) == []
    finally:
        gate.set()
        logger.removeHandler(handler)
        io.shutdown()
    with pytest.raises(ValueError):
        future.result(WAIT)
    assert proxy._cell.terminated().reason == "failed"
    assert any(
        "failure of" in r.getMessage() and "cut short" in r.getMessage()
        for r in caplog.records
    )


def test_geventio_logs_from_a_hub_greenlet_even_while_another_thread_logs(io):
    # After patch_all() a handler's lock is a gevent lock, and waiting for
    # it in a hub greenlet raised BlockingSwitchOutError.
    from geventio._logging import log

    got = Recorder()

    class Capture(logging.Handler):
        def emit(self, record):
            got.append(record.getMessage())

    handler = Capture()
    logger = logging.getLogger("geventio.test_hub")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    held, release = _native.allocate_lock(), _native.allocate_lock()
    held.acquire()
    release.acquire()

    def hold():
        with handler.lock:
            held.release()
            release.acquire()

    _native.start_new_thread(hold, ())
    try:
        assert held.acquire(True, WAIT)
        io.workers[0]._inbox.call_soon(
            lambda: log(logger, logging.WARNING, "from the hub greenlet")
        )
        if MONKEY:
            # The hub goes on while the record waits for the lock.
            assert Echo.start(io).ask("alive", timeout=WAIT) == "alive"
    finally:
        release.release()
    try:
        assert got.wait_for(1) == ["from the hub greenlet"]
    finally:
        logger.removeHandler(handler)


def test_an_unbind_while_a_failure_is_reported_waits_for_the_report(io, task_errors):
    reporting, unbound, calls = OneShot(), OneShot(), Recorder()

    class Both(Task):
        def run(self):
            reporting.wait(WAIT)
            self.unbind()  # from another greenlet of the task
            unbound.set()

        def receive(self, message):
            raise ValueError("first")

        def on_failure(self, exc):
            calls.append("on_failure start")
            reporting.set()
            unbound.wait(WAIT)
            calls.append("on_failure end")

        def on_unbind(self):
            calls.append("on_unbind")

    proxy = Both.start(io)
    ended = Recorder()
    proxy.on_stopped(ended.append)
    proxy.tell("boom")
    assert proxy.join(WAIT)
    assert calls.items == ["on_failure start", "on_failure end", "on_unbind"]
    terminated = ended.wait_for(1)[0]
    assert terminated.reason == "failed" and isinstance(terminated.error, ValueError)
