"""Task lifecycle: binding, run, receive, become, unbind and the hooks."""

import logging

import gevent
import pytest
from helpers import WAIT, Recorder

from geventio import (
    GeventIOError,
    IOSystemShutdown,
    ProxyStopped,
    StatusCheck,
    Task,
    _native,
)


class Echo(Task):
    def receive(self, message):
        self.sender.tell(message)


class Lifecycle(Task):
    """Records every hook it goes through into a shared Recorder."""

    def __init__(self, log, fail_in=None):
        super().__init__()
        self.log = log
        self.fail_in = fail_in
        if fail_in == "init":
            raise RuntimeError("boom in init")

    def _maybe_fail(self, where):
        if self.fail_in == where:
            raise RuntimeError(f"boom in {where}")

    def on_bind(self):
        self.log.append("on_bind")
        self._maybe_fail("on_bind")

    def run(self):
        self.log.append("run")
        self._maybe_fail("run")

    def receive(self, message):
        self.log.append(("receive", message))
        if message == "unbind":
            self.unbind()
        self._maybe_fail("receive")
        if self.sender is not None:
            self.sender.tell("ok")

    def on_failure(self, exc):
        self.log.append(("on_failure", str(exc)))

    def on_unbind(self):
        self.log.append("on_unbind")


def test_run_and_hooks_execute_on_the_bound_workers_own_thread_and_hub(io):
    seen = Recorder()

    class Where(Task):
        def __init__(self):
            super().__init__()
            seen.append(("init", _native.get_ident(), gevent.get_hub()))

        def on_bind(self):
            seen.append(("on_bind", _native.get_ident(), gevent.get_hub()))

        def run(self):
            seen.append(("run", _native.get_ident(), gevent.get_hub()))

        def receive(self, message):
            seen.append(("receive", _native.get_ident(), gevent.get_hub()))

        def on_unbind(self):
            seen.append(("on_unbind", _native.get_ident(), gevent.get_hub()))

    proxy = Where.start(io)
    proxy.tell("hi")
    seen.wait_for(4)
    proxy.stop()
    items = seen.wait_for(5)

    worker = io.workers[0]
    assert [name for name, _, _ in items] == [
        "init",
        "on_bind",
        "run",
        "receive",
        "on_unbind",
    ]
    assert {ident for _, ident, _ in items} == {worker.ident}
    assert {hub for _, _, hub in items} == {worker.hub}
    assert worker.ident != _native.get_ident()


def test_start_returns_the_proxy_at_once_and_the_worker_constructs_the_task(io):
    started = _native.allocate_lock()
    started.acquire()

    class Slow(Task):
        def __init__(self, arg, *, kw):
            super().__init__()
            self.value = (arg, kw)
            started.acquire()  # holds the worker until the test lets go

        def receive(self, message):
            self.sender.tell(self.value)

    proxy = Slow.start(io, 1, kw=2)  # returns although the ctor is blocked

    assert proxy.is_alive
    started.release()
    assert proxy.ask("value", timeout=WAIT) == (1, 2)


def test_messages_told_before_binding_are_kept_and_delivered_in_order(io):
    gate = _native.allocate_lock()
    gate.acquire()
    got = Recorder()

    class Gated(Task):
        def on_bind(self):
            gate.acquire()

        def receive(self, message):
            got.append(message)

    proxy = Gated.start(io)
    for i in range(100):
        proxy.tell(i)
    gate.release()

    assert got.wait_for(100) == list(range(100))


def test_receive_handles_one_message_at_a_time_even_when_it_blocks(io):
    got = Recorder()

    class Sleepy(Task):
        busy = False

        def receive(self, message):
            assert not self.busy, "two messages handled at once"
            self.busy = True
            gevent.sleep(0.001)  # cooperative: lets the hub run others
            self.busy = False
            got.append(message)

    proxy = Sleepy.start(io)
    for i in range(20):
        proxy.tell(i)

    assert got.wait_for(20) == list(range(20))


def test_run_and_receive_interleave_cooperatively(io):
    class Poller(Task):
        ticks = 0

        def run(self):
            while True:
                self.ticks += 1
                gevent.sleep(0.001)

        def receive(self, message):
            self.sender.tell(self.ticks)

    proxy = Poller.start(io)
    first = proxy.ask("ticks", timeout=WAIT)
    later = first
    while later == first:  # bounded by the asks' timeout
        later = proxy.ask("ticks", timeout=WAIT)

    assert later > first


def test_sender_is_the_proxy_that_told_the_message(io2):
    got = Recorder()

    class Sink(Task):
        def receive(self, message):
            got.append((message, self.sender))

    class Source(Task):
        def receive(self, target):
            target.tell("from source")  # sender defaults to self.proxy

    sink = Sink.start(io2)
    source = Source.start(io2)
    source.tell(sink)
    sink.tell("from outside")

    items = dict(got.wait_for(2))
    assert items["from source"] is source
    assert items["from outside"] is None


def test_task_attributes_name_its_worker_io_and_proxy(io2):
    class Self(Task):
        def receive(self, message):
            self.sender.tell((self.proxy, self.worker, self.io, self.is_bound))

    proxy = Self.start(io2.workers[1])

    assert proxy.ask(None, timeout=WAIT) == (proxy, io2.workers[1], io2, True)


def test_become_and_unbecome_switch_the_handler(io):
    class Moody(Task):
        def receive(self, message):
            if message == "angry":
                self.become(self.angry)
            self.sender.tell("calm")

        def angry(self, message):
            if message == "calm down":
                self.unbecome()
            self.sender.tell("ANGRY")

    proxy = Moody.start(io)

    assert proxy.ask("hi", timeout=WAIT) == "calm"
    assert proxy.ask("angry", timeout=WAIT) == "calm"
    assert proxy.ask("hi", timeout=WAIT) == "ANGRY"
    assert proxy.ask("calm down", timeout=WAIT) == "ANGRY"
    assert proxy.ask("hi", timeout=WAIT) == "calm"


def test_become_rejects_a_handler_that_is_not_callable(io):
    class Bad(Task):
        def receive(self, message):
            try:
                self.become("nope")
            except TypeError as exc:
                self.sender.tell(str(exc))

    assert "callable" in Bad.start(io).ask(None, timeout=WAIT)


@pytest.mark.parametrize(
    "how", ["unbind", "stop", "shutdown", "fail_run", "fail_receive", "fail_on_bind"]
)
def test_on_unbind_runs_exactly_once_whatever_ended_the_task(make_io, how):
    make_io.expect_failures()
    io = make_io()
    log = Recorder()
    fail_in = {
        "fail_run": "run",
        "fail_receive": "receive",
        "fail_on_bind": "on_bind",
    }.get(how)
    proxy = Lifecycle.start(io, log, fail_in=fail_in)

    if how == "unbind":
        proxy.tell("unbind")
    elif how == "stop":
        log.wait_for(2)
        proxy.stop()
    elif how == "shutdown":
        log.wait_for(2)
        io.shutdown(timeout=WAIT)
    elif how == "fail_receive":
        proxy.tell("x")
    log.wait_for_item("on_unbind")
    io.shutdown(timeout=WAIT)  # would run a second on_unbind, if there were one

    assert log.items.count("on_unbind") == 1, log.items
    assert log.items[-1] == "on_unbind"
    assert not proxy.is_alive


def test_a_failing_constructor_is_logged_and_leaves_no_bound_task(io, task_errors):
    log = Recorder()
    proxy = Lifecycle.start(io, log, fail_in="init")

    with pytest.raises(ProxyStopped):
        proxy.ask("x", timeout=WAIT)
    assert not proxy.is_alive
    assert log.items == []  # not bound, so no on_unbind
    assert any("Lifecycle" in r.getMessage() for r in task_errors())


@pytest.mark.parametrize("where", ["run", "receive", "on_bind"])
def test_a_failure_never_kills_the_worker_or_other_tasks(io, task_errors, where):
    log = Recorder()
    bystander = Echo.start(io)
    failing = Lifecycle.start(io, log, fail_in=where)
    failing.tell("x")

    log.wait_for_item("on_unbind")

    assert bystander.ask("still here", timeout=WAIT) == "still here"
    assert bystander.is_alive
    errors = task_errors()
    assert errors, "the failure was not logged"
    record = errors[0]
    assert "Lifecycle" in record.getMessage()
    assert record.exc_info is not None and f"boom in {where}" in str(record.exc_info[1])
    assert record.levelno == logging.ERROR


def test_on_failure_runs_before_on_unbind(io, task_errors):
    log = Recorder()
    proxy = Lifecycle.start(io, log, fail_in="receive")

    with pytest.raises(RuntimeError, match="boom in receive"):
        proxy.ask("x", timeout=WAIT)
    items = log.wait_for(5)

    assert items[-2:] == [("on_failure", "boom in receive"), "on_unbind"]


def test_an_exception_in_on_unbind_is_logged_and_unbinding_completes(io, task_errors):
    done = Recorder()

    class BadExit(Task):
        def on_unbind(self):
            done.append("on_unbind")
            raise ValueError("bad exit")

    proxy = BadExit.start(io)
    proxy.stop()
    done.wait_for(1)

    assert io.shutdown(timeout=WAIT) == []
    assert any("on_unbind" in r.getMessage() for r in task_errors())


def test_unbind_kills_the_tasks_greenlets_with_greenlet_exit(io):
    log = Recorder()

    class Forever(Task):
        def run(self):
            try:
                self.spawn(self.helper)
                log.append("running")
                gevent.sleep(3600)
            except gevent.GreenletExit:
                log.append("run killed")
                raise

        def helper(self):
            try:
                gevent.sleep(3600)
            except gevent.GreenletExit:
                log.append("helper killed")
                raise

        def on_unbind(self):
            log.append("on_unbind")

    proxy = Forever.start(io)
    log.wait_for(1)
    proxy.stop()
    items = log.wait_for(4)

    assert sorted(items[1:3]) == ["helper killed", "run killed"]
    assert items[3] == "on_unbind"


def test_a_task_that_unbinds_stops_its_proxy(io):
    log = Recorder()
    proxy = Lifecycle.start(io, log)

    proxy.tell("unbind")
    log.wait_for(4)  # on_bind, run, receive, on_unbind

    assert not proxy.is_alive
    with pytest.raises(ProxyStopped):
        proxy.ask("x", timeout=WAIT)


def test_task_methods_refuse_other_threads(io):
    holder = Recorder()

    class Keep(Task):
        def on_bind(self):
            holder.append(self)

    Keep.start(io)
    task = holder.wait_for(1)[0]

    with pytest.raises(GeventIOError, match="own worker hub"):
        task.unbind()
    with pytest.raises(GeventIOError, match="own worker hub"):
        task.become(print)


def test_a_task_built_by_hand_has_no_proxy():
    task = Echo()

    with pytest.raises(GeventIOError, match="start"):
        _ = task.proxy
    assert not task.is_bound


def test_start_rejects_targets_that_are_not_an_iosystem_or_worker():
    with pytest.raises(TypeError, match="IOSystem or a Worker"):
        Echo.start("io")
    with pytest.raises(TypeError, match="IOSystem or a Worker"):
        Echo.start(None)


def test_start_on_a_shut_down_system_raises(make_io):
    io = make_io()
    io.shutdown()

    with pytest.raises(IOSystemShutdown, match="shut down"):
        Echo.start(io)
    with pytest.raises(IOSystemShutdown):
        Echo.start(io.workers[0])


def test_default_receive_counts_unhandled_messages_as_dead_letters(io):
    class Mute(Task):
        pass

    proxy = Mute.start(io)
    proxy.tell("nobody listens")
    proxy.ask(StatusCheck(), timeout=WAIT)  # queued behind the message

    assert io.dead_letters == 1


class Rally(Task):
    """Bounces a counter with its partner for ever (until stopped)."""

    def __init__(self, hits):
        super().__init__()
        self.hits = hits

    def receive(self, message):
        self.hits[0] += 1
        self.sender.tell(message + 1)


def test_tasks_telling_each_other_for_ever_leave_the_worker_to_the_rest(io):
    hits = [0]
    ping, pong = Rally.start(io, hits), Rally.start(io, hits)
    pong.tell(0, sender=ping)
    events = Recorder()

    class Neighbour(Task):
        def run(self):
            self.schedule_once(0.001, "timer")
            self.spawn(self.nap)

        def nap(self):
            # What is tested: a greenlet waiting on a loop timer is resumed
            # while the rally runs (the test itself waits on events).
            gevent.sleep(0.001)
            events.append(("slept", hits[0]))

        def receive(self, message):
            if message == "timer":
                events.append(("timer", hits[0]))
            else:
                self.sender.tell(message)

    neighbour = Neighbour.start(io)
    # A timer, a greenlet sleeping on the hub and an ask all get their turn
    # while the rally goes on, and a stop overtakes the rally's messages.
    seen = dict(events.wait_for(2))
    assert seen["timer"] > 0 and seen["slept"] > 0
    assert neighbour.ask("still here", timeout=WAIT) == "still here"
    ping.stop()
    assert ping.join(WAIT) and pong.is_alive
    pong.stop()
    assert pong.join(WAIT)
    assert hits[0] > max(seen.values())


def test_tokens_in_a_ring_of_tasks_on_one_worker_each_arrive_once_in_order(io):
    size, tokens, laps = 5, 3, 1_000
    done = Recorder()

    class Station(Task):
        def __init__(self, index):
            super().__init__()
            self.index = index
            self.next = None
            self.last = {}

        def receive(self, message):
            if self.next is None:
                self.next = message
                self.sender.tell("linked")
                return
            token, step = message
            # Every token comes by once a lap, in order, never twice.
            assert step % size == self.index
            assert step == self.last.get(token, step - size) + size
            self.last[token] = step
            if step + 1 == size * laps:
                done.append(token)
            else:
                self.next.tell((token, step + 1))

    stations = [Station.start(io, i) for i in range(size)]
    for i, station in enumerate(stations):
        assert station.ask(stations[(i + 1) % size], timeout=WAIT) == "linked"
    for token in range(tokens):
        stations[0].tell((token, 0))
    assert sorted(done.wait_for(tokens)) == list(range(tokens))
    # An assertion failing in a station would have failed its task.
    assert all(station.is_alive for station in stations)
