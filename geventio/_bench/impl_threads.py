"""The plain-threads peer: one native thread per actor, each handling what
arrives on its own :class:`queue.Queue`, one message at a time. Replies to
asks travel back on a queue of the asker's."""

from __future__ import annotations

import queue
from collections.abc import Callable
from time import perf_counter
from typing import Any

from .. import _native
from .common import (
    WAIT,
    BenchError,
    InOrder,
    Latch,
    NativeThread,
    Outcome,
    PerSender,
    Rally,
    Started,
    latency_figures,
    timed_senders,
)

NAME = "threads"

_STOP = object()


class ThreadActor:
    """A native thread calling ``handler(message)`` for each queued message.

    ``first()``, if given, runs on the thread before the first message.
    """

    def __init__(
        self, handler: Callable[[Any], Any], first: Callable[[], Any] | None = None
    ) -> None:
        self.queue: queue.Queue[Any] = queue.Queue()
        self.tell = self.queue.put
        self.error: BaseException | None = None
        self._exited = Latch()
        _native.start_new_thread(self._main, (handler, first))

    def _main(
        self, handler: Callable[[Any], Any], first: Callable[[], Any] | None
    ) -> None:
        get = self.queue.get
        try:
            if first is not None:
                first()
            while True:
                message = get()
                if message is _STOP:
                    break
                handler(message)
        except BaseException as exc:
            self.error = exc
        finally:
            self._exited.release()

    def request_stop(self) -> None:
        """Ask the thread to finish after the messages queued so far."""
        self.queue.put(_STOP)

    def wait_stopped(self) -> None:
        """Wait for the thread to finish; re-raise what its handler raised."""
        self._exited.wait("an actor thread to stop")
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        self.request_stop()
        self.wait_stopped()


# -- a, b: tell ---------------------------------------------------------------


def _tell_round(n: int) -> float:
    state = InOrder(n)

    def receive(message: int) -> None:
        if message != state.expected:
            state.bad += 1
        state.expected = message + 1
        if message == state.last:
            state.done.release()

    sink = ThreadActor(receive)
    tell = sink.tell
    t0 = perf_counter()
    for i in range(n):
        tell(i)
    state.done.wait(f"{n} messages")
    elapsed = perf_counter() - t0
    sink.stop()
    state.verify("threads tell")
    return elapsed


def tell_one(n: int) -> dict[str, float]:
    _tell_round(min(n, 2000))
    return {"rate": n / _tell_round(n), "checked": n}


def _tell_from_threads(senders: int, n: int) -> tuple[float, int]:
    state = PerSender(senders, n)

    def receive(message: tuple[int, int]) -> None:
        sender, seq = message
        if seq != state.next[sender]:
            state.bad += 1
        state.next[sender] = seq + 1
        state.left -= 1
        if not state.left:
            state.done.release()

    sink = ThreadActor(receive)

    def send(index: int, count: int) -> None:
        tell = sink.tell
        for seq in range(count):
            tell((index, seq))

    elapsed = timed_senders(send, senders, n, state.done)
    sink.stop()
    return elapsed, state.verify("threads tell from threads")


def tell_four(n: int) -> dict[str, float]:
    _tell_from_threads(4, min(n, 500))
    elapsed, checked = _tell_from_threads(4, n)
    return {"rate": checked / elapsed, "checked": checked}


# -- c, d, e: ask -------------------------------------------------------------


def _answer(request: tuple[int, queue.Queue[Any]]) -> None:
    message, reply_to = request
    reply_to.put(message)


def _asks(target: ThreadActor, n: int) -> list[float]:
    replies: queue.Queue[Any] = queue.Queue()
    tell = target.tell
    get = replies.get
    samples = []
    for i in range(n):
        t0 = perf_counter()
        tell((i, replies))
        try:
            reply = get(True, WAIT)
        except queue.Empty:
            raise BenchError(f"threads: no answer to ask {i}") from None
        samples.append(perf_counter() - t0)
        if reply != i:
            raise BenchError(f"threads: asked {i}, got {reply!r}")
    return samples


def _lock_round_trips(n: int) -> list[float]:
    """Two native threads handing a turn back and forth with two locks."""
    there, back = _native.allocate_lock(), _native.allocate_lock()
    there.acquire()
    back.acquire()

    def answer(count: int) -> None:
        for _ in range(count):
            if not there.acquire(True, WAIT):
                return
            back.release()

    thread = NativeThread(answer, n)
    samples = []
    for i in range(n):
        t0 = perf_counter()
        there.release()
        if not back.acquire(True, WAIT):
            raise BenchError(f"threads: no answer to round trip {i}")
        samples.append(perf_counter() - t0)
    thread.join("the answering thread")
    return samples


def lock_round_trip(n: int) -> dict[str, float]:
    """The operating system's floor under every cross-thread round trip."""
    _lock_round_trips(min(n, 200))
    return latency_figures(_lock_round_trips(n), n)


def ask_from_thread(n: int) -> dict[str, float]:
    echo = ThreadActor(_answer)
    try:
        _asks(echo, min(n, 200))
        samples = _asks(echo, n)
    finally:
        echo.stop()
    return latency_figures(samples, n)


def _actor_asks(n: int) -> list[float]:
    echo = ThreadActor(_answer)
    outcome = Outcome()

    def ask_all(count: int) -> None:
        try:
            outcome.samples = _asks(echo, count)
        except BaseException as exc:
            outcome.error = exc
        finally:
            outcome.done.release()

    asker = ThreadActor(ask_all)
    asker.tell(n)
    try:
        return outcome.wait(f"{n} asks between threads")
    finally:
        asker.stop()
        echo.stop()


def ask_other_worker(n: int) -> dict[str, float]:
    _actor_asks(min(n, 200))
    return latency_figures(_actor_asks(n), n)


# Threads share no loop: "the same worker" is another thread here too.
ask_same_worker = ask_other_worker


# -- f: ping-pong -------------------------------------------------------------


def _rally(n: int) -> float:
    r = Rally(n)
    peers: list[ThreadActor] = []

    def ping(y: int) -> None:
        if y != r.ping_next:
            r.bad += 1
        r.ping_next = y + 2
        if y >= r.end:
            r.finish()
        else:
            peers[1].tell(y + 1)

    def pong(x: int) -> None:
        if x != r.pong_next:
            r.bad += 1
        r.pong_next = x + 2
        peers[0].tell(x + 1)

    peers.extend((ThreadActor(ping), ThreadActor(pong)))
    r.t0 = perf_counter()
    peers[1].tell(0)
    r.done.wait(f"{n} round trips")
    for peer in peers:
        peer.stop()
    r.verify("threads ping-pong")
    return r.elapsed


def pingpong_same(n: int) -> dict[str, float]:
    _rally(min(n, 200))
    return {"round_trip": _rally(n) / n * 1e6, "checked": n}


pingpong_two = pingpong_same


# -- g, h: starting tasks, idle tasks -----------------------------------------


def _ignore(message: Any) -> None:
    pass


def _start_round(n: int) -> tuple[float, list[ThreadActor]]:
    started = Started(n)
    actors = []
    t0 = perf_counter()
    for _ in range(n):
        actors.append(ThreadActor(_ignore, started.hit))
    started.done.wait(f"{n} threads to start")
    elapsed = perf_counter() - t0
    started.verify("threads start")
    return elapsed, actors


def _stop_all(actors: list[ThreadActor]) -> None:
    for actor in actors:
        actor.request_stop()
    for actor in actors:
        actor.wait_stopped()


def start_rate(n: int) -> dict[str, float]:
    _stop_all(_start_round(min(n, 100))[1])
    elapsed, actors = _start_round(n)
    _stop_all(actors)
    return {"rate": n / elapsed, "checked": n}


def idle_tasks(n: int, sample: Callable[[str], None]) -> None:
    keep = _start_round(20)[1]
    sample("before")
    keep += _start_round(n)[1]
    sample("after")


# -- i: start and stop --------------------------------------------------------


def system_start() -> Any:
    return ThreadActor(_ignore)


def system_stop(system: Any) -> None:
    system.stop()
