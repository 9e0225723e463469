"""Death watch, timers, children, the registry, futures, stash and more."""

import concurrent.futures

import gevent
import pytest
from helpers import CALLERS, WAIT, Recorder, call_from, wait_until

from geventio import (
    AskTimeout,
    GeventIOError,
    IOSystem,
    PoisonPill,
    ProxyStopped,
    StatusCheck,
    Task,
    Terminated,
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


class Watcher(Collect):
    """Watches every proxy it is told about; records what it receives."""

    def receive(self, message):
        if isinstance(message, tuple) and message[0] == "watch":
            self.watch(message[1])
            if self.sender is not None:
                self.sender.tell("watching")
        elif isinstance(message, tuple) and message[0] == "unwatch":
            self.unwatch(message[1])
            self.sender.tell("unwatched")
        else:
            self.got.append(message)


class FailOnCommand(Task):
    def receive(self, message):
        if message == "fail":
            raise ValueError("asked to fail")
        if message == "unbind":
            self.unbind()
        if self.sender is not None:
            self.sender.tell(message)


# -- death watch --------------------------------------------------------------


@pytest.mark.parametrize("ending", ["stop", "unbind", "fail", "shutdown"])
def test_a_watcher_is_told_terminated_once_with_the_reason(make_io, ending):
    make_io.expect_failures()
    got = Recorder()
    watcher = Watcher.start(make_io("watcher"), got)
    target_io = make_io("target")
    target = FailOnCommand.start(target_io)
    assert watcher.ask(("watch", target), timeout=WAIT) == "watching"
    assert watcher.ask(("watch", target), timeout=WAIT) == "watching"  # twice = once

    if ending == "stop":
        target.stop()
    elif ending == "shutdown":
        target_io.shutdown(timeout=WAIT)
    else:
        target.tell(ending)
    [terminated] = got.wait_for(1)
    watcher.ask(StatusCheck(), timeout=WAIT)

    assert len(got) == 1
    assert isinstance(terminated, Terminated) and terminated.proxy is target
    expected = {
        "stop": "stopped",
        "unbind": "unbound",
        "fail": "failed",
        "shutdown": "IO system shut down",
    }[ending]
    assert terminated.reason == expected
    if ending == "fail":
        assert isinstance(terminated.error, ValueError)


def test_watching_a_task_that_already_ended_delivers_at_once(make_io):
    got = Recorder()
    watcher = Watcher.start(make_io("watcher"), got)
    target = Echo.start(make_io("target"))
    target.stop()
    assert target.join(WAIT)

    watcher.tell(("watch", target))

    assert got.wait_for(1)[0].proxy is target


def test_unwatch_stops_the_terminated_message(make_io):
    got = Recorder()
    watcher = Watcher.start(make_io("watcher"), got)
    target = Echo.start(make_io("target"))
    watcher.ask(("watch", target), timeout=WAIT)

    watcher.ask(("unwatch", target), timeout=WAIT)
    target.stop()
    target.join(WAIT)
    watcher.tell("marker")

    assert got.wait_for(1) == ["marker"]
    watcher.ask(StatusCheck(), timeout=WAIT)
    assert got.items == ["marker"]


@pytest.mark.parametrize("caller", CALLERS)
def test_join_waits_until_on_unbind_has_finished(make_io, caller):
    finished = Recorder()

    class SlowExit(Task):
        def on_unbind(self):
            gevent.sleep(0.05)
            finished.append("on_unbind done")

    proxy = SlowExit.start(make_io("target"))
    assert not proxy.join(0.01)
    proxy.stop()

    assert call_from(caller, lambda: proxy.join(WAIT), io=make_io("caller"))
    assert finished.items == ["on_unbind done"]


@pytest.mark.parametrize("caller", CALLERS)
def test_on_stopped_calls_back_off_the_hub_with_the_reason(make_io, caller):
    make_io.expect_failures()
    io = make_io("target")
    proxy = FailOnCommand.start(io)
    seen = Recorder()

    def register():
        proxy.on_stopped(lambda t: seen.append((t, _native.get_ident())))

    call_from(caller, register, io=make_io("caller"))
    proxy.tell("fail")

    [(terminated, ident)] = seen.wait_for(1)
    assert terminated.reason == "failed" and terminated.proxy is proxy
    assert ident != io.workers[0].ident
    proxy.on_stopped(lambda t: seen.append((t, "late")))  # already ended
    assert seen.wait_for(2)[1][1] == "late"


def test_a_task_cannot_join_itself(io):
    class Selfish(Task):
        def receive(self, message):
            try:
                self.proxy.join(1)
            except GeventIOError as exc:
                self.sender.tell(str(exc))

    assert "itself" in Selfish.start(io).ask("x", timeout=WAIT)


# -- timers -------------------------------------------------------------------


def test_schedule_once_and_every_deliver_to_the_task_and_cancel_stops_them(io):
    got = Recorder()

    class Timed(Collect):
        def on_bind(self):
            self.schedule_once(0.01, "once")
            self.schedule_every(0.01, "tick", key="ticker")

        def receive(self, message):
            super().receive(message)
            if message == "tick" and self.got.items.count("tick") == 3:
                self.got.append(("cancelled", self.cancel("ticker")))
                self.got.append(("again", self.cancel("ticker")))

    proxy = Timed.start(io, got)
    got.wait(lambda items: ("again", False) in items)
    proxy.ask(StatusCheck(), timeout=WAIT)

    assert got.items.count("once") == 1
    assert got.items.count("tick") == 3
    assert ("cancelled", True) in got.items


def test_scheduling_under_the_same_key_replaces_the_timer(io):
    got = Recorder()

    class Replace(Collect):
        def on_bind(self):
            self.schedule_once(3600, "never", key="k")
            self.schedule_once(0.01, "replaced", key="k")

    Replace.start(io, got)

    assert got.wait_for(1) == ["replaced"]


def test_timers_are_cancelled_when_the_task_unbinds(io):
    got = Recorder()

    class Ticking(Collect):
        def on_bind(self):
            self.schedule_every(0.005, "tick")

        def receive(self, message):
            super().receive(message)
            self.unbind()

    proxy = Ticking.start(io, got)
    got.wait_for(1)
    proxy.join(WAIT)
    dead_before = io.dead_letters
    ticks = len(got)
    # A later task on the same worker proves the loop kept turning; an
    # uncancelled timer would have told dead letters meanwhile.
    for _ in range(5):
        Echo.start(io).ask("x", timeout=WAIT)

    assert len(got) == ticks == 1
    assert io.dead_letters == dead_before
    assert not io.workers[0].hub.loop.pendingcnt or True


@pytest.mark.parametrize("bad", [-1, "1", None, float("nan"), float("inf")])
@pytest.mark.parametrize("method", ["schedule_once", "schedule_every"])
def test_timer_delays_are_validated(io, bad, method):
    class Bad(Task):
        def receive(self, message):
            try:
                getattr(self, method)(bad, "x")
            except (TypeError, ValueError) as exc:
                self.sender.tell(str(exc))
            else:
                self.sender.tell("accepted")

    # NaN once reached libev, which aborted the whole process.
    answer = Bad.start(io).ask("x", timeout=WAIT)
    assert ("delay" if method == "schedule_once" else "interval") in answer


# -- children -----------------------------------------------------------------


def test_children_unbind_before_their_parents_on_unbind(io):
    log = Recorder()

    class Child(Task):
        def __init__(self, tag):
            super().__init__()
            self.tag = tag

        def on_unbind(self):
            log.append(f"child {self.tag} unbound")

    class Parent(Task):
        def on_bind(self):
            self.kids = [self.start_child(Child, i) for i in range(3)]

        def receive(self, message):
            self.sender.tell([k.is_alive for k in self.children])

        def on_unbind(self):
            log.append("parent on_unbind")

    parent = Parent.start(io)
    assert parent.ask("kids?", timeout=WAIT) == [True, True, True]
    parent.stop()
    items = log.wait_for(4)

    assert sorted(items[:3]) == [f"child {i} unbound" for i in range(3)]
    assert items[3] == "parent on_unbind"


def test_a_childs_failure_reaches_the_parent_as_terminated(io, task_errors):
    got = Recorder()

    class Child(FailOnCommand):
        pass

    class Parent(Collect):
        def on_bind(self):
            self.child = self.start_child(Child)

        def receive(self, message):
            if message == "break the child":
                self.child.tell("fail")
            else:
                self.got.append(message)

    parent = Parent.start(io, got)
    parent.tell("break the child")
    [terminated] = got.wait_for(1)

    assert terminated.reason == "failed"
    assert isinstance(terminated.error, ValueError)
    assert parent.is_alive  # the parent decides; it was not taken down


def test_children_start_on_the_parents_worker(io2):
    class Child(Task):
        def receive(self, message):
            self.sender.tell(self.worker)

    class Parent(Task):
        def receive(self, message):
            self.sender.tell(self.start_child(Child).ask("where", timeout=WAIT))

    parent = Parent.start(io2.workers[1])

    assert parent.ask("go", timeout=WAIT) is io2.workers[1]


# -- stop priority and draining -----------------------------------------------


@pytest.mark.parametrize("how", ["poison pill", "stop(drain=True)"])
def test_a_draining_stop_handles_the_queued_messages_first(io, how):
    got = Recorder()

    class Note(Collect):
        def on_unbind(self):
            self.got.append("on_unbind")

    proxy = Note.start(io, got)
    for i in range(5):
        proxy.tell(i)
    if how == "poison pill":
        proxy.tell(PoisonPill())
    else:
        proxy.stop(drain=True)
    proxy.tell("after the pill")

    assert got.wait_for(6) == [0, 1, 2, 3, 4, "on_unbind"]
    assert io.shutdown(timeout=WAIT) == []
    assert io.dead_letters == 1
    # A stop from outside, not the task ending itself.
    assert proxy._cell.terminated().reason == "stopped"


# -- the registry -------------------------------------------------------------


@pytest.mark.parametrize("caller", CALLERS)
def test_find_returns_the_named_task_until_it_ends(make_io, caller):
    io = make_io("registry")
    proxy = Echo.start_named("echo", io)

    assert call_from(caller, lambda: io.find("echo"), io=make_io("caller")) is proxy
    assert io.find("nobody") is None
    proxy.stop()
    proxy.join(WAIT)
    assert io.find("echo") is None
    again = Echo.start_named("echo", io)  # the name was freed
    assert io.find("echo") is again


def test_duplicate_names_raise_and_bad_names_are_rejected(io):
    Echo.start_named("dup", io)

    with pytest.raises(ValueError, match="already has a task named 'dup'"):
        Echo.start_named("dup", io)
    with pytest.raises(TypeError, match="name must be a str"):
        Echo.start_named(3, io)
    with pytest.raises(ValueError, match="name must not be empty"):
        Echo.start_named("", io)


def test_registries_of_two_io_systems_do_not_interfere(make_io):
    a, b = make_io("a"), make_io("b")

    in_a = Echo.start_named("same", a)
    in_b = Echo.start_named("same", b)

    assert a.find("same") is in_a and b.find("same") is in_b
    assert a.tasks() == [in_a] and b.tasks() == [in_b]


def test_the_name_does_not_collide_with_constructor_arguments(io):
    class Named(Task):
        def __init__(self, name):
            super().__init__()
            self.name = name

        def receive(self, message):
            self.sender.tell(self.name)

    proxy = Named.start_named("registry name", io, name="ctor name")

    assert proxy.ask("?", timeout=WAIT) == "ctor name"


def test_tasks_lists_live_proxies_and_broadcast_reaches_them(io2):
    got = Recorder()

    class Other(Collect):
        pass

    proxies = [Collect.start(io2, got) for _ in range(3)] + [Other.start(io2, got)]
    assert sorted(map(id, io2.tasks())) == sorted(map(id, proxies))

    assert io2.broadcast("all") == 4
    got.wait_for(4)
    assert io2.broadcast("others only", cls=Other) == 1
    assert got.wait_for(5)[4] == "others only"


# -- futures and forwarding ---------------------------------------------------


@pytest.mark.parametrize("caller", CALLERS)
def test_ask_future_resolves_from_every_kind_of_caller(make_io, caller):
    proxy = Echo.start(make_io("target"))

    def use_future():
        future = proxy.ask_future("hello", timeout=WAIT)
        return future.result(WAIT), future.done(), future.exception(WAIT)

    assert call_from(caller, use_future, io=make_io("caller")) == ("hello", True, None)


def test_ask_future_failures_and_timeouts(io, task_errors):
    class Never(Task):
        def receive(self, message):
            pass

    never = Never.start(io)
    future = never.ask_future("x", timeout=0.05)
    with pytest.raises(AskTimeout):
        future.result()
    assert future.done() and isinstance(future.exception(), AskTimeout)

    pending = never.ask_future("y")
    with pytest.raises(AskTimeout, match="still waiting"):
        pending.result(timeout=0.01)
    assert pending.running()
    assert pending.cancel() and pending.cancelled()
    with pytest.raises(concurrent.futures.CancelledError):
        pending.result()
    with pytest.raises(concurrent.futures.CancelledError):
        pending.exception()

    failing = FailOnCommand.start(io).ask_future("fail")
    with pytest.raises(ValueError, match="asked to fail"):
        failing.result(WAIT)

    stopped = Echo.start(io)
    stopped.stop()
    with pytest.raises(ProxyStopped):
        stopped.ask_future("z").result(WAIT)


def test_ask_future_done_callbacks_run_off_the_hub(io):
    seen = Recorder()
    proxy = Echo.start(io)

    future = proxy.ask_future("v")
    future.add_done_callback(lambda f: seen.append((f.result(), _native.get_ident())))

    [(value, ident)] = seen.wait_for(1)
    assert value == "v" and ident != io.workers[0].ident


def test_forward_keeps_the_original_sender(io2):
    class Front(Task):
        def __init__(self, back):
            super().__init__()
            self.back = back

        def receive(self, message):
            self.forward(("via front", message), self.back)

    back = Echo.start(io2.workers[1])
    front = Front.start(io2.workers[0], back)

    assert front.ask("q", timeout=WAIT) == ("via front", "q")


# -- stash --------------------------------------------------------------------


def test_stash_and_unstash_all_keep_order(io):
    got = Recorder()

    class Gate(Collect):
        open = False

        def receive(self, message):
            if message == "open":
                self.open = True
                self.unstash_all()
            elif not self.open:
                self.stash()
            else:
                self.got.append(message)

    proxy = Gate.start(io, got)
    for i in range(5):
        proxy.tell(i)
    proxy.tell("open")
    proxy.tell("after")

    assert got.wait_for(6) == [0, 1, 2, 3, 4, "after"]


def test_what_is_still_stashed_at_unbind_becomes_dead_letters(io):
    class Hoarder(Task):
        def receive(self, message):
            self.stash()

    proxy = Hoarder.start(io)
    for i in range(3):
        proxy.tell(i)
    proxy.ask(StatusCheck(), timeout=WAIT)
    proxy.stop()
    proxy.join(WAIT)

    assert io.dead_letters == 3


def test_stash_outside_message_handling_is_an_error(io):
    got = Recorder()

    class Early(Task):
        def run(self):
            try:
                self.stash()
            except GeventIOError as exc:
                got.append(str(exc))

    Early.start(io)

    assert "while handling a message" in got.wait_for(1)[0]


# -- offloading ---------------------------------------------------------------


def test_run_blocking_runs_off_the_hub_while_the_worker_keeps_going(io):
    gate = _native.allocate_lock()
    gate.acquire()
    got = Recorder()

    def blocking():
        gate.acquire()  # a native, non-cooperative wait
        return _native.get_ident()

    class Offload(Task):
        def receive(self, message):
            if message == "block":
                self.sender.tell(self.run_blocking(blocking))
            else:
                self.sender.tell("still responsive")

    proxy = Offload.start(io)
    future = proxy.ask_future("block")
    assert Echo.start(io).ask("other task", timeout=WAIT) == "other task"
    got.append(proxy.ask_future("ping"))
    gate.release()

    assert future.result(WAIT) not in (io.workers[0].ident, _native.get_ident())
    assert got.items[0].result(WAIT) == "still responsive"


# -- dump ---------------------------------------------------------------------


def test_dump_shows_each_worker_its_tasks_and_their_stacks():
    with IOSystem("dumped", workers=2) as io:

        class Sleeper(Task):
            def run(self):
                gevent.sleep(3600)

        Sleeper.start_named("sleeper", io.workers[1]).ask(StatusCheck(), timeout=WAIT)
        text = io.dump()

    assert "dumped-worker-0" in text and "dumped-worker-1" in text
    assert "Sleeper 'sleeper'" in text and "mailbox 0" in text
    assert "gevent.sleep(3600)" in text


def test_a_done_callback_may_read_its_future_even_after_shutdown():
    seen = Recorder()
    io = IOSystem("late", workers=1)
    proxy = Echo.start(io)
    future = proxy.ask_future("v")
    assert future.result(WAIT) == "v"
    io.shutdown()

    # The service thread is gone: the callback runs in this thread, and
    # reading the future inside it must not deadlock.
    future.add_done_callback(lambda f: seen.append(f.result(0)))

    assert seen.items == ["v"]


def test_a_parent_forgets_each_child_once_it_has_ended(io):
    class Child(Task):
        def receive(self, message):
            self.unbind()

    class Parent(Task):
        def receive(self, message):
            if isinstance(message, Terminated):
                return
            if message == "count":
                self.sender.tell(len(self._cell.children or ()))
                return
            self.start_child(Child).tell("end now")

    parent = Parent.start(io)
    for _ in range(20):
        parent.tell("spawn one")
    wait_until(
        lambda: parent.ask("count", timeout=WAIT) == 0, what="children forgotten"
    )


def test_toolkit_calls_refuse_what_they_cannot_use(io):
    class Checks(Task):
        def receive(self, message):
            errors = []
            for call in (
                lambda: self.spawn(None),
                lambda: self.run_blocking("not callable"),
                lambda: self.forward("x", 3),
            ):
                try:
                    call()
                except TypeError as exc:
                    errors.append(str(exc))
            self.sender.tell(errors)

    assert Checks.start(io).ask("go", timeout=WAIT) == [
        "fn must be callable, got None",
        "fn must be callable, got 'not callable'",
        "to must be a ProxyActor, got 3",
    ]
    with pytest.raises(TypeError, match="fn must be callable"):
        Echo.start(io).ask_future("x").add_done_callback(None)
    with pytest.raises(TypeError, match="name must be a str"):
        io.find(3)
