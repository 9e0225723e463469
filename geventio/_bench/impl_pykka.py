"""The Pykka peer: one ``pykka.ThreadingActor`` (one OS thread) per actor.

Pykka is not a dependency of geventio. :func:`available` says whether it
can be imported; the runner skips this peer, and says so, when it cannot.
Pykka's ``tell`` carries no sender, so actors that answer one another are
handed each other's references.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from time import perf_counter
from types import SimpleNamespace
from typing import Any

from .common import (
    WAIT,
    BenchError,
    InOrder,
    PerSender,
    Rally,
    Started,
    latency_figures,
    timed_senders,
)

NAME = "pykka"


def available() -> str | None:
    """None if Pykka can be imported, else why not."""
    try:
        module = importlib.import_module("pykka")
    except ImportError as exc:
        return f"not installed ({exc}); `pip install pykka` to compare with it"
    return None if hasattr(module, "ThreadingActor") else "no pykka.ThreadingActor"


def version() -> str | None:
    """The installed Pykka's version, or None."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("pykka")
    except PackageNotFoundError:
        return None


@functools.cache
def _actors() -> SimpleNamespace:
    """Build the actor classes, once Pykka is known to be importable."""
    base: Any = importlib.import_module("pykka").ThreadingActor

    class Actor(base):  # type: ignore[misc]
        # A benchmark that failed half-way must not hang the process.
        use_daemon_thread = True

    class InOrderSink(Actor):
        def __init__(self, state: InOrder) -> None:
            super().__init__()
            self.state = state

        def on_receive(self, message: int) -> None:
            state = self.state
            if message != state.expected:
                state.bad += 1
            state.expected = message + 1
            if message == state.last:
                state.done.release()

    class PerSenderSink(Actor):
        def __init__(self, state: PerSender) -> None:
            super().__init__()
            self.state = state

        def on_receive(self, message: tuple[int, int]) -> None:
            state = self.state
            sender, seq = message
            if seq != state.next[sender]:
                state.bad += 1
            state.next[sender] = seq + 1
            state.left -= 1
            if not state.left:
                state.done.release()

    class Echo(Actor):
        def on_receive(self, message: Any) -> Any:
            return message

    class Asker(Actor):
        def on_receive(self, message: tuple[Any, int]) -> list[float]:
            target, n = message
            ask = target.ask
            samples = []
            for i in range(n):
                t0 = perf_counter()
                reply = ask(i, timeout=WAIT)
                samples.append(perf_counter() - t0)
                if reply != i:
                    raise BenchError(f"pykka: asked {i}, got {reply!r}")
            return samples

    class Ping(Actor):
        def __init__(self, rally: Rally, peer: list[Any]) -> None:
            super().__init__()
            self.rally = rally
            self.peer = peer

        def on_receive(self, y: int) -> None:
            r = self.rally
            if y != r.ping_next:
                r.bad += 1
            r.ping_next = y + 2
            if y >= r.end:
                r.finish()
            else:
                self.peer[0].tell(y + 1)

    class Pong(Actor):
        def __init__(self, rally: Rally, peer: list[Any]) -> None:
            super().__init__()
            self.rally = rally
            self.peer = peer

        def on_receive(self, x: int) -> None:
            r = self.rally
            if x != r.pong_next:
                r.bad += 1
            r.pong_next = x + 2
            self.peer[0].tell(x + 1)

    class FirstLine(Actor):
        def __init__(self, started: Started) -> None:
            super().__init__()
            self.started = started

        def on_start(self) -> None:
            self.started.hit()

    return SimpleNamespace(
        InOrderSink=InOrderSink,
        PerSenderSink=PerSenderSink,
        Echo=Echo,
        Asker=Asker,
        Ping=Ping,
        Pong=Pong,
        FirstLine=FirstLine,
    )


def _stop_all(refs: list[Any]) -> None:
    futures = [ref.stop(block=False) for ref in refs]
    for future in futures:
        future.get(timeout=WAIT)


# -- a, b: tell ---------------------------------------------------------------


def _tell_round(n: int) -> float:
    state = InOrder(n)
    sink = _actors().InOrderSink.start(state)
    tell = sink.tell
    t0 = perf_counter()
    for i in range(n):
        tell(i)
    state.done.wait(f"{n} messages")
    elapsed = perf_counter() - t0
    sink.stop()
    state.verify("pykka tell")
    return elapsed


def tell_one(n: int) -> dict[str, float]:
    _tell_round(min(n, 2000))
    return {"rate": n / _tell_round(n), "checked": n}


def _tell_from_threads(senders: int, n: int) -> tuple[float, int]:
    state = PerSender(senders, n)
    sink = _actors().PerSenderSink.start(state)

    def send(index: int, count: int) -> None:
        tell = sink.tell
        for seq in range(count):
            tell((index, seq))

    elapsed = timed_senders(send, senders, n, state.done)
    sink.stop()
    return elapsed, state.verify("pykka tell from threads")


def tell_four(n: int) -> dict[str, float]:
    _tell_from_threads(4, min(n, 500))
    elapsed, checked = _tell_from_threads(4, n)
    return {"rate": checked / elapsed, "checked": checked}


# -- c, d, e: ask -------------------------------------------------------------


def _thread_asks(n: int) -> list[float]:
    echo = _actors().Echo.start()
    ask = echo.ask
    samples = []
    try:
        for i in range(n):
            t0 = perf_counter()
            reply = ask(i, timeout=WAIT)
            samples.append(perf_counter() - t0)
            if reply != i:
                raise BenchError(f"pykka: asked {i}, got {reply!r}")
    finally:
        echo.stop()
    return samples


def ask_from_thread(n: int) -> dict[str, float]:
    _thread_asks(min(n, 200))
    return latency_figures(_thread_asks(n), n)


def _actor_asks(n: int) -> list[float]:
    actors = _actors()
    asker = actors.Asker.start()
    echo = actors.Echo.start()
    try:
        samples: list[float] = asker.ask((echo, n), timeout=WAIT)
    finally:
        _stop_all([asker, echo])
    return samples


def ask_other_worker(n: int) -> dict[str, float]:
    _actor_asks(min(n, 200))
    return latency_figures(_actor_asks(n), n)


# Every Pykka actor is a thread: "the same worker" is another thread too.
ask_same_worker = ask_other_worker


# -- f: ping-pong -------------------------------------------------------------


def _rally(n: int) -> float:
    actors = _actors()
    r = Rally(n)
    to_ping: list[Any] = []
    to_pong: list[Any] = []
    ping = actors.Ping.start(r, to_pong)
    pong = actors.Pong.start(r, to_ping)
    to_ping.append(ping)
    to_pong.append(pong)
    r.t0 = perf_counter()
    pong.tell(0)
    r.done.wait(f"{n} round trips")
    _stop_all([ping, pong])
    r.verify("pykka ping-pong")
    return r.elapsed


def pingpong_same(n: int) -> dict[str, float]:
    _rally(min(n, 200))
    return {"round_trip": _rally(n) / n * 1e6, "checked": n}


pingpong_two = pingpong_same


# -- g, h: starting actors, idle actors ---------------------------------------


def _start_round(n: int) -> tuple[float, list[Any]]:
    started = Started(n)
    start = _actors().FirstLine.start
    refs = []
    t0 = perf_counter()
    for _ in range(n):
        refs.append(start(started))
    started.done.wait(f"{n} actors to start")
    elapsed = perf_counter() - t0
    started.verify("pykka start")
    return elapsed, refs


def start_rate(n: int) -> dict[str, float]:
    _stop_all(_start_round(min(n, 100))[1])
    elapsed, refs = _start_round(n)
    _stop_all(refs)
    return {"rate": n / elapsed, "checked": n}


def idle_tasks(n: int, sample: Callable[[str], None]) -> None:
    keep = _start_round(20)[1]
    sample("before")
    keep += _start_round(n)[1]
    sample("after")


# -- i: start and stop --------------------------------------------------------


def system_start() -> Any:
    return _actors().Echo.start()


def system_stop(system: Any) -> None:
    if not system.stop(timeout=WAIT):
        raise BenchError("pykka: the actor did not stop")
