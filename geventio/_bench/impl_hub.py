"""The hand-written baseline: a gevent hub on a native thread, fed through a
deque and one async watcher, with no framework around it.

It is the least code that gets work onto a hub from another thread, and so
the limit geventio is measured against. Its handlers are plain functions
that the drain calls straight from the hub greenlet: they cost no greenlet
switch, and in exchange they may never block, which a geventio task's
``receive`` may. A plain thread waits for a reply on a native lock; a
greenlet waits on a :class:`gevent.hub.Waiter` that the hub resumes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from time import perf_counter
from typing import Any

import gevent
from gevent.hub import Waiter

from .. import _native
from .common import (
    WAIT,
    BenchError,
    InOrder,
    Latch,
    Outcome,
    PerSender,
    Rally,
    Started,
    latency_figures,
    timed_senders,
)

NAME = "gevent-hub"


class HubThread:
    """One native thread running a gevent hub; :meth:`submit` feeds it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.items: deque[tuple[Callable[[Any], Any], Any]] = deque()
        self.pending = False
        self.hub: Any = None
        self.loop: Any = None
        self._watcher: Any = None
        self._stopper: Any = None
        self._ready = Latch()
        self._exited = Latch()
        _native.start_new_thread(self._main, ())
        self._ready.wait(f"{name} to start")

    def _main(self) -> None:
        hub = self.hub = gevent.get_hub()
        self.loop = hub.loop
        self._watcher = hub.loop.async_()
        self._watcher.start(self._drain)
        self._stopper = Waiter(hub)
        self._ready.release()
        try:
            # The thread's main greenlet parks here; the hub runs the loop,
            # which the started watcher keeps alive, until stop().
            self._stopper.get()
        finally:
            self._watcher.close()
            hub.destroy(destroy_loop=True)
            self._exited.release()

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> None:
        """Have the hub call ``fn(arg)``; any thread; never blocks."""
        self.items.append((fn, arg))
        # Append first, then look at the flag; the drain clears the flag
        # before it looks at the deque. So an item is either seen by a drain
        # already under way or followed by a send of its own.
        if not self.pending:
            self.pending = True
            self._watcher.send()

    def _drain(self) -> None:
        self.pending = False
        items = self.items
        while items:
            fn, arg = items.popleft()
            fn(arg)

    def stop(self) -> None:
        """Stop the hub and wait for the thread; from another thread."""
        self.submit(self._stopper.switch, None)
        self._exited.wait(f"{self.name} to stop")


def _spawn(fn: Callable[..., Any], *args: Any) -> Callable[[Any], Any]:
    """A drain item that starts ``fn(*args)`` in a greenlet on the hub."""
    return lambda _: gevent.spawn(fn, *args)


# -- a, b: tell ---------------------------------------------------------------


def _tell_round(hub: HubThread, n: int) -> float:
    state = InOrder(n)

    def receive(message: int) -> None:
        if message != state.expected:
            state.bad += 1
        state.expected = message + 1
        if message == state.last:
            state.done.release()

    submit = hub.submit
    t0 = perf_counter()
    for i in range(n):
        submit(receive, i)
    state.done.wait(f"{n} messages")
    elapsed = perf_counter() - t0
    state.verify("gevent-hub tell")
    return elapsed


def tell_one(n: int) -> dict[str, float]:
    hub = HubThread("bench-hub")
    try:
        _tell_round(hub, min(n, 2000))
        elapsed = _tell_round(hub, n)
    finally:
        hub.stop()
    return {"rate": n / elapsed, "checked": n}


def _tell_from_threads(hub: HubThread, senders: int, n: int) -> tuple[float, int]:
    state = PerSender(senders, n)

    def receive(message: tuple[int, int]) -> None:
        sender, seq = message
        if seq != state.next[sender]:
            state.bad += 1
        state.next[sender] = seq + 1
        state.left -= 1
        if not state.left:
            state.done.release()

    def send(index: int, count: int) -> None:
        submit = hub.submit
        for seq in range(count):
            submit(receive, (index, seq))

    elapsed = timed_senders(send, senders, n, state.done)
    return elapsed, state.verify("gevent-hub tell from threads")


def tell_four(n: int) -> dict[str, float]:
    hub = HubThread("bench-hub")
    try:
        _tell_from_threads(hub, 4, min(n, 500))
        elapsed, checked = _tell_from_threads(hub, 4, n)
    finally:
        hub.stop()
    return {"rate": checked / elapsed, "checked": checked}


# -- c: ask from a plain thread -----------------------------------------------


class _ThreadReply:
    """Where the hub leaves an answer for a plain thread, and its lock."""

    __slots__ = ("lock", "value")

    def __init__(self) -> None:
        self.value: Any = None
        self.lock = _native.allocate_lock()
        self.lock.acquire()


def _answer_thread(request: tuple[int, _ThreadReply]) -> None:
    message, reply = request
    reply.value = message
    reply.lock.release()


def _thread_asks(hub: HubThread, n: int) -> list[float]:
    reply = _ThreadReply()
    submit = hub.submit
    acquire = reply.lock.acquire
    samples = []
    for i in range(n):
        t0 = perf_counter()
        submit(_answer_thread, (i, reply))
        if not acquire(True, WAIT):
            raise BenchError(f"gevent-hub: no answer to ask {i}")
        samples.append(perf_counter() - t0)
        if reply.value != i:
            raise BenchError(f"gevent-hub: asked {i}, got {reply.value!r}")
    return samples


def ask_from_thread(n: int) -> dict[str, float]:
    hub = HubThread("bench-hub")
    try:
        _thread_asks(hub, min(n, 200))
        samples = _thread_asks(hub, n)
    finally:
        hub.stop()
    return latency_figures(samples, n)


# -- d, e: ask from a greenlet on a hub ---------------------------------------


def _greenlet_asks(
    home: HubThread, ask: Callable[[int, Any], None], n: int, outcome: Outcome
) -> None:
    """Ask ``n`` times from a greenlet on *home*; ``ask(i, waiter)`` sends."""
    try:
        hub = home.hub
        samples = outcome.samples
        for i in range(n):
            waiter = Waiter(hub)
            t0 = perf_counter()
            ask(i, waiter)
            reply = waiter.get()
            samples.append(perf_counter() - t0)
            if reply != i:
                raise BenchError(f"gevent-hub: asked {i}, got {reply!r}")
    except BaseException as exc:
        outcome.error = exc
    finally:
        outcome.done.release()


def _asks_between(home: HubThread, other: HubThread | None, n: int) -> list[float]:
    outcome = Outcome()
    if other is None:
        # Same hub: the answer is a loop callback, no thread is crossed.
        run_callback = home.loop.run_callback

        def answer_here(message: int, waiter: Any) -> None:
            waiter.switch(message)

        def ask(i: int, waiter: Any) -> None:
            run_callback(answer_here, i, waiter)

    else:

        def answer_home(request: tuple[int, Any]) -> None:
            message, waiter = request
            home.submit(waiter.switch, message)

        def ask(i: int, waiter: Any) -> None:
            other.submit(answer_home, (i, waiter))

    home.submit(_spawn(_greenlet_asks, home, ask, n, outcome), None)
    return outcome.wait(f"{n} asks between greenlets")


def _two_hub_asks(n: int, same: bool) -> dict[str, float]:
    home = HubThread("bench-hub-0")
    other = None if same else HubThread("bench-hub-1")
    try:
        _asks_between(home, other, min(n, 200))
        samples = _asks_between(home, other, n)
    finally:
        home.stop()
        if other is not None:
            other.stop()
    return latency_figures(samples, n)


def ask_other_worker(n: int) -> dict[str, float]:
    return _two_hub_asks(n, same=False)


def ask_same_worker(n: int) -> dict[str, float]:
    return _two_hub_asks(n, same=True)


# -- f: ping-pong -------------------------------------------------------------


def _rally(a: HubThread, b: HubThread | None, n: int) -> float:
    r = Rally(n)
    if b is None:
        run_callback = a.loop.run_callback

        def to_a(value: int) -> None:
            run_callback(ping, value)

        def to_b(value: int) -> None:
            run_callback(pong, value)

    else:
        hub_b = b

        def to_a(value: int) -> None:
            a.submit(ping, value)

        def to_b(value: int) -> None:
            hub_b.submit(pong, value)

    def ping(y: int) -> None:
        if y != r.ping_next:
            r.bad += 1
        r.ping_next = y + 2
        if y >= r.end:
            r.finish()
        else:
            to_b(y + 1)

    def pong(x: int) -> None:
        if x != r.pong_next:
            r.bad += 1
        r.pong_next = x + 2
        to_a(x + 1)

    r.t0 = perf_counter()
    (b or a).submit(pong, 0)
    r.done.wait(f"{n} round trips")
    r.verify("gevent-hub ping-pong")
    return r.elapsed


def _pingpong(n: int, same: bool) -> dict[str, float]:
    a = HubThread("bench-hub-0")
    b = None if same else HubThread("bench-hub-1")
    try:
        _rally(a, b, min(n, 500))
        elapsed = _rally(a, b, n)
    finally:
        a.stop()
        if b is not None:
            b.stop()
    return {"round_trip": elapsed / n * 1e6, "checked": n}


def pingpong_same(n: int) -> dict[str, float]:
    return _pingpong(n, same=True)


def pingpong_two(n: int) -> dict[str, float]:
    return _pingpong(n, same=False)


# -- g: starting tasks --------------------------------------------------------


def _spawn_first_line(started: Started) -> None:
    gevent.spawn(started.hit)


def _start_round(hub: HubThread, n: int) -> float:
    started = Started(n)
    submit = hub.submit
    t0 = perf_counter()
    for _ in range(n):
        submit(_spawn_first_line, started)
    started.done.wait(f"{n} greenlets to start")
    elapsed = perf_counter() - t0
    started.verify("gevent-hub spawn")
    return elapsed


def start_rate(n: int) -> dict[str, float]:
    hub = HubThread("bench-hub")
    try:
        _start_round(hub, min(n, 500))
        elapsed = _start_round(hub, n)
    finally:
        hub.stop()
    return {"rate": n / elapsed, "checked": n}


# -- h: idle tasks ------------------------------------------------------------


class _IdleActor:
    """A hand-written idle actor: a greenlet parked on its mailbox."""

    __slots__ = ("greenlet", "mailbox", "waiter")

    def __init__(self, started: Started) -> None:
        self.mailbox: deque[Any] = deque()
        self.waiter = Waiter()
        self.greenlet = gevent.spawn(self._run, started)

    def _run(self, started: Started) -> None:
        started.hit()
        # Idle: wait for mail that never comes.
        self.waiter.get()


def _start_idle(hub: HubThread, n: int, keep: list[Any]) -> None:
    started = Started(n)
    for _ in range(n):
        hub.submit(lambda _: keep.append(_IdleActor(started)), None)
    started.done.wait(f"{n} idle greenlets")
    started.verify("gevent-hub idle")


def idle_tasks(n: int, sample: Callable[[str], None]) -> None:
    hub = HubThread("bench-hub")
    keep: list[Any] = []
    _start_idle(hub, 100, keep)
    sample("before")
    _start_idle(hub, n, keep)
    sample("after")


# -- i: start and stop --------------------------------------------------------


def system_start() -> Any:
    return HubThread("bench-hub")


def system_stop(system: Any) -> None:
    system.stop()
