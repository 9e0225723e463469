"""ProxyActor: tell, ask and stop from every kind of caller."""

import gevent
import pytest
from helpers import CALLERS, WAIT, Recorder, call_from

from geventio import (
    AskTimeout,
    GeventIOError,
    ProxyActor,
    ProxyStopped,
    StatusCheck,
    Task,
    WouldDeadlock,
    _native,
)


class Echo(Task):
    def receive(self, message):
        self.sender.tell(message)


class Collect(Task):
    def __init__(self, got):
        super().__init__()
        self.got = got

    def receive(self, message):
        self.got.append(message)


class Never(Task):
    """Receives, never answers."""

    def receive(self, message):
        pass


class Blocker(Task):
    """Blocks its whole worker (not cooperatively) until released."""

    def __init__(self, entered, gate):
        super().__init__()
        self.entered, self.gate = entered, gate

    def receive(self, message):
        self.entered.append(message)
        self.gate.acquire()


@pytest.mark.parametrize("caller", CALLERS)
def test_tell_reaches_the_task_from_every_kind_of_caller(make_io, caller):
    io = make_io("target")
    got = Recorder()
    proxy = Collect.start(io, got)

    call_from(caller, lambda: proxy.tell(caller), io=make_io("caller"))

    assert got.wait_for(1) == [caller]


@pytest.mark.parametrize("caller", CALLERS)
def test_ask_returns_the_reply_to_every_kind_of_caller(make_io, caller):
    io = make_io("target")
    proxy = Echo.start(io)

    assert (
        call_from(caller, lambda: proxy.ask(caller, timeout=WAIT), io=make_io("caller"))
        == caller
    )


@pytest.mark.parametrize("caller", CALLERS)
def test_ask_times_out_with_ask_timeout_from_every_kind_of_caller(make_io, caller):
    proxy = Never.start(make_io("target"))

    def ask():
        with pytest.raises(AskTimeout) as info:
            proxy.ask("hello?", timeout=0.05)
        return info.value

    exc = call_from(caller, ask, io=make_io("caller"))
    assert isinstance(exc, TimeoutError)


@pytest.mark.parametrize("caller", CALLERS)
def test_ask_to_a_stopped_proxy_raises_at_once(make_io, caller):
    proxy = Echo.start(make_io("target"))
    proxy.stop()

    def ask():
        start = _native.monotonic()
        with pytest.raises(ProxyStopped):
            proxy.ask("anyone?", timeout=WAIT)
        return _native.monotonic() - start

    assert call_from(caller, ask, io=make_io("caller")) < WAIT / 2


@pytest.mark.parametrize("caller", CALLERS)
def test_an_ask_fails_promptly_when_its_target_stops_meanwhile(make_io, caller):
    blocked_io = make_io("target")

    def ask_while_stopped():
        # The target's worker is held in another task's receive, so the
        # ask's message stays queued until the target is stopped from
        # another thread, which then frees the worker.
        gate = _native.allocate_lock()
        gate.acquire()
        entered = Recorder()
        Blocker.start(blocked_io, entered, gate).tell("hold")
        entered.wait_for(1)
        target = Never.start(blocked_io)
        _spawn_native(_stop_later, target, gate)
        start = _native.monotonic()
        with pytest.raises(ProxyStopped):
            target.ask("x", timeout=WAIT * 3)
        return _native.monotonic() - start

    assert call_from(caller, ask_while_stopped, io=make_io("caller")) < WAIT


def _stop_later(proxy, gate):
    """From another thread: stop *proxy*, then free its blocked worker."""
    proxy.stop()
    gate.release()


def test_ask_from_a_task_to_itself_inside_receive_raises_instead_of_deadlocking(io):
    class Narcissus(Task):
        def receive(self, message):
            try:
                self.proxy.ask("me?", timeout=WAIT)
            except WouldDeadlock as exc:
                self.sender.tell(exc)

    exc = Narcissus.start(io).ask("go", timeout=WAIT)

    assert isinstance(exc, WouldDeadlock)
    assert "itself" in str(exc)


def test_a_tasks_run_may_ask_its_own_proxy(io):
    got = Recorder()

    class Selfish(Task):
        def run(self):
            got.append(self.proxy.ask("from run", timeout=WAIT))

        def receive(self, message):
            self.sender.tell(message.upper())

    Selfish.start(io)

    assert got.wait_for(1) == ["FROM RUN"]


def test_ask_from_the_hub_greenlet_itself_raises_would_deadlock(io):
    proxy = Echo.start(io)
    result = Recorder()

    def in_hub():
        try:
            proxy.ask("x", timeout=WAIT)
        except WouldDeadlock as exc:
            result.append(exc)

    class ScheduleInHub(Task):
        def receive(self, message):
            self.worker.loop.run_callback(in_hub)

    ScheduleInHub.start(io).tell("go")

    assert isinstance(result.wait_for(1)[0], WouldDeadlock)


def test_ask_blocks_only_the_calling_greenlet_on_a_worker_hub(io2):
    slow = Never.start(io2.workers[1])
    got = Recorder()

    class Asker(Task):
        def run(self):
            self.spawn(self.ticker)
            try:
                slow.ask("never answered", timeout=0.2)
            except AskTimeout:
                got.append("timeout")

        def ticker(self):
            got.append("tick while asking")

    Asker.start(io2.workers[0])

    assert got.wait_for(2) == ["tick while asking", "timeout"]


def test_stop_is_idempotent_and_is_alive_is_false_when_it_returns(io):
    proxy = Echo.start(io)

    proxy.stop()
    assert not proxy.is_alive
    proxy.stop()
    assert not proxy.is_alive


def test_messages_told_to_a_stopped_proxy_are_counted_as_dead_letters(io):
    proxy = Echo.start(io)
    proxy.stop()

    for i in range(5):
        proxy.tell(i)

    assert io.dead_letters == 5


def test_stop_overtakes_queued_messages_which_become_dead_letters(io):
    gate = _native.allocate_lock()
    gate.acquire()
    entered = Recorder()
    got = Recorder()
    blocker = Blocker.start(io, entered, gate)
    blocker.tell("hold")
    entered.wait_for(1)  # the only worker is now busy

    class Polite(Collect):
        def shutdown_request(self):
            self.got.append("shutdown_request")
            super().shutdown_request()

        def on_unbind(self):
            self.got.append("on_unbind")

    proxy = Polite.start(io, got)
    for i in range(10):
        proxy.tell(i)
    proxy.stop()
    gate.release()

    assert got.wait_for(2) == ["shutdown_request", "on_unbind"]
    io.shutdown(timeout=WAIT)
    assert io.dead_letters == 10
    assert io.stats()[0]["dead_letters"] == 10


def test_a_late_reply_to_an_ask_is_a_dead_letter(io):
    gate = _native.allocate_lock()
    gate.acquire()

    class Late(Task):
        def receive(self, message):
            gate.acquire()
            self.sender.tell("too late")
            self.sender.tell("and again")

    proxy = Late.start(io)
    with pytest.raises(AskTimeout):
        proxy.ask("x", timeout=0.01)
    gate.release()
    proxy.ask(StatusCheck(), timeout=WAIT)  # queued behind the slow message

    assert io.dead_letters == 2


def test_each_message_arrives_exactly_once_in_per_sender_order(io):
    senders, per_sender = 4, 20_000
    got = Recorder()
    proxy = Collect.start(io, got)

    def send(tag):
        for i in range(per_sender):
            proxy.tell((tag, i))

    done = []
    for tag in range(senders):
        done.append(_spawn_native(send, tag))
    for d in done:
        d.get(WAIT)
    items = got.wait_for(senders * per_sender, timeout=WAIT * 3)

    assert len(items) == senders * per_sender
    for tag in range(senders):
        assert [i for t, i in items if t == tag] == list(range(per_sender))
    proxy.ask(StatusCheck(), timeout=WAIT)
    assert len(got) == senders * per_sender  # nothing delivered twice


def _spawn_native(fn, *args):
    from geventio._mailbox import OneShot

    done = OneShot()

    def main():
        try:
            done.set(fn(*args))
        except BaseException as exc:
            done.fail(exc)

    _native.start_new_thread(main, ())
    return done


def test_tasks_tell_and_ask_each_other_across_workers(io2):
    class Adder(Task):
        def receive(self, message):
            self.sender.tell(message + 1)

    class Client(Task):
        def receive(self, message):
            other, n = message
            self.sender.tell(other.ask(n, timeout=WAIT))

    adder = Adder.start(io2.workers[0])
    client = Client.start(io2.workers[1])

    assert client.ask((adder, 41), timeout=WAIT) == 42


def test_tell_rejects_a_sender_that_is_not_a_proxy(io):
    proxy = Echo.start(io)

    with pytest.raises(TypeError, match="sender"):
        proxy.tell("x", sender="me")


@pytest.mark.parametrize("timeout", [-1, "1", True])
def test_ask_rejects_a_bad_timeout(io, timeout):
    proxy = Echo.start(io)

    with pytest.raises((TypeError, ValueError), match="timeout"):
        proxy.ask("x", timeout=timeout)


def test_a_reply_handle_cannot_be_asked(io):
    class AskTheSender(Task):
        def receive(self, message):
            try:
                self.sender.ask("?", timeout=1)
            except GeventIOError as exc:
                self.sender.tell(str(exc))

    assert "reply handle" in AskTheSender.start(io).ask("x", timeout=WAIT)


def test_status_check_is_answered_by_the_task_and_never_reaches_receive(io):
    got = Recorder()
    proxy = Collect.start(io, got)
    proxy.tell("a")
    proxy.tell("b")

    status = proxy.ask(StatusCheck(), timeout=WAIT)

    assert status == {"alive": True, "handled": 2}
    assert got.items == ["a", "b"]


def test_proxies_are_proxy_actors_with_a_readable_repr(io):
    proxy = Echo.start(io)

    assert isinstance(proxy, ProxyActor)
    assert "Echo" in repr(proxy) and io.workers[0].name in repr(proxy)


def test_an_ask_on_the_main_hub_lets_other_main_hub_greenlets_run(io):
    slow = Never.start(io)
    ran = []

    def other():
        ran.append("other ran")

    def asker():
        g = gevent.spawn(other)
        with pytest.raises(AskTimeout):
            slow.ask("x", timeout=0.1)
        g.join()
        return list(ran)

    assert call_from("main_hub", asker) == ["other ran"]


def test_a_task_keeps_answering_across_many_idle_spells(io):
    class Busy(Task):
        def run(self):
            while True:
                gevent.sleep(0.001)

        def receive(self, message):
            self.sender.tell(message)

    proxies = [Busy.start(io) for _ in range(3)]

    # Each ask finds the mailbox empty and its runner gone: each one has
    # to start a runner again.
    for i in range(30):
        for proxy in proxies:
            assert proxy.ask(i, timeout=WAIT) == i
            assert proxy.ask(StatusCheck(), timeout=WAIT)["handled"] == 2 * i + 1
