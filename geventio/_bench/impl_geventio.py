"""The workloads on geventio, through its public API only: IO systems,
tasks and their proxies, with the defaults a user gets."""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from typing import Any

from .. import IOSystem, ProxyActor, Task, Worker
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

NAME = "geventio"


class _InOrderSink(Task):
    def __init__(self, state: InOrder) -> None:
        super().__init__()
        self.state = state

    def receive(self, message: int) -> None:
        state = self.state
        if message != state.expected:
            state.bad += 1
        state.expected = message + 1
        if message == state.last:
            state.done.release()


class _PerSenderSink(Task):
    def __init__(self, state: PerSender) -> None:
        super().__init__()
        self.state = state

    def receive(self, message: tuple[int, int]) -> None:
        state = self.state
        sender, seq = message
        if seq != state.next[sender]:
            state.bad += 1
        state.next[sender] = seq + 1
        state.left -= 1
        if not state.left:
            state.done.release()


class _Echo(Task):
    def receive(self, message: Any) -> None:
        sender = self.sender
        if sender is not None:
            sender.tell(message)


class _Asker(Task):
    """Asks a target ``n`` times from its own handling, timing each ask."""

    def receive(self, message: tuple[ProxyActor, int]) -> None:
        target, n = message
        ask = target.ask
        samples = []
        for i in range(n):
            t0 = perf_counter()
            reply = ask(i)
            samples.append(perf_counter() - t0)
            if reply != i:
                raise BenchError(f"geventio: asked {i}, got {reply!r}")
        sender = self.sender
        if sender is not None:
            sender.tell(samples)


class _Ping(Task):
    def __init__(self, rally: Rally) -> None:
        super().__init__()
        self.rally = rally

    def receive(self, y: int) -> None:
        r = self.rally
        if y != r.ping_next:
            r.bad += 1
        r.ping_next = y + 2
        if y >= r.end:
            r.finish()
        elif self.sender is not None:
            self.sender.tell(y + 1)


class _Pong(Task):
    def __init__(self, rally: Rally) -> None:
        super().__init__()
        self.rally = rally

    def receive(self, x: int) -> None:
        r = self.rally
        if x != r.pong_next:
            r.bad += 1
        r.pong_next = x + 2
        if self.sender is not None:
            self.sender.tell(x + 1)


class _FirstLine(Task):
    """Counts itself started in its first line, then is idle for good."""

    def __init__(self, started: Started) -> None:
        super().__init__()
        self.started = started

    def run(self) -> None:
        self.started.hit()


# -- a, b: tell ---------------------------------------------------------------


def _tell_round(io: IOSystem, n: int) -> float:
    state = InOrder(n)
    sink = _InOrderSink.start(io, state)
    tell = sink.tell
    t0 = perf_counter()
    for i in range(n):
        tell(i)
    state.done.wait(f"{n} messages")
    elapsed = perf_counter() - t0
    sink.stop()
    state.verify("geventio tell")
    return elapsed


def tell_one(n: int) -> dict[str, float]:
    with IOSystem("bench", workers=1) as io:
        _tell_round(io, min(n, 2000))
        elapsed = _tell_round(io, n)
    return {"rate": n / elapsed, "checked": n}


def _tell_from_threads(io: IOSystem, senders: int, n: int) -> tuple[float, int]:
    state = PerSender(senders, n)
    sink = _PerSenderSink.start(io, state)

    def send(index: int, count: int) -> None:
        tell = sink.tell
        for seq in range(count):
            tell((index, seq))

    elapsed = timed_senders(send, senders, n, state.done)
    sink.stop()
    return elapsed, state.verify("geventio tell from threads")


def tell_four(n: int) -> dict[str, float]:
    with IOSystem("bench", workers=1) as io:
        _tell_from_threads(io, 4, min(n, 500))
        elapsed, checked = _tell_from_threads(io, 4, n)
    return {"rate": checked / elapsed, "checked": checked}


# -- c: ask from a plain thread -----------------------------------------------


def _thread_asks(io: IOSystem, n: int) -> list[float]:
    echo = _Echo.start(io)
    ask = echo.ask
    samples = []
    for i in range(n):
        t0 = perf_counter()
        reply = ask(i, WAIT)
        samples.append(perf_counter() - t0)
        if reply != i:
            raise BenchError(f"geventio: asked {i}, got {reply!r}")
    echo.stop()
    return samples


def ask_from_thread(n: int) -> dict[str, float]:
    with IOSystem("bench", workers=1) as io:
        _thread_asks(io, min(n, 200))
        samples = _thread_asks(io, n)
    return latency_figures(samples, n)


# -- d, e: ask from a task ----------------------------------------------------


def _task_asks(home: Worker, there: Worker, n: int) -> list[float]:
    asker = _Asker.start(home)
    echo = _Echo.start(there)
    samples: list[float] = asker.ask((echo, n), WAIT)
    asker.stop()
    echo.stop()
    return samples


def _asks_between(same: bool, n: int) -> dict[str, float]:
    with IOSystem("bench", workers=2) as io:
        home, other = io.workers
        there = home if same else other
        _task_asks(home, there, min(n, 200))
        samples = _task_asks(home, there, n)
    return latency_figures(samples, n)


def ask_other_worker(n: int) -> dict[str, float]:
    return _asks_between(False, n)


def ask_same_worker(n: int) -> dict[str, float]:
    return _asks_between(True, n)


# -- f: ping-pong -------------------------------------------------------------


def _rally(a: Worker, b: Worker, n: int) -> float:
    r = Rally(n)
    ping = _Ping.start(a, r)
    pong = _Pong.start(b, r)
    r.t0 = perf_counter()
    pong.tell(0, sender=ping)
    r.done.wait(f"{n} round trips")
    ping.stop()
    pong.stop()
    r.verify("geventio ping-pong")
    return r.elapsed


def _pingpong(same: bool, n: int) -> dict[str, float]:
    with IOSystem("bench", workers=2) as io:
        a, other = io.workers
        b = a if same else other
        _rally(a, b, min(n, 500))
        elapsed = _rally(a, b, n)
    return {"round_trip": elapsed / n * 1e6, "checked": n}


def pingpong_same(n: int) -> dict[str, float]:
    return _pingpong(True, n)


def pingpong_two(n: int) -> dict[str, float]:
    return _pingpong(False, n)


# -- g: starting tasks --------------------------------------------------------


def _start_round(io: IOSystem, n: int) -> float:
    started = Started(n)
    start = _FirstLine.start
    t0 = perf_counter()
    for _ in range(n):
        start(io, started)
    started.done.wait(f"{n} tasks to start")
    elapsed = perf_counter() - t0
    started.verify("geventio start")
    return elapsed


def start_rate(n: int) -> dict[str, float]:
    with IOSystem("bench", workers=1) as io:
        _start_round(io, min(n, 500))
        elapsed = _start_round(io, n)
    return {"rate": n / elapsed, "checked": n}


# -- h: idle tasks ------------------------------------------------------------


def _start_idle(io: IOSystem, n: int, keep: list[ProxyActor]) -> None:
    started = Started(n)
    for _ in range(n):
        keep.append(_FirstLine.start(io, started))
    started.done.wait(f"{n} idle tasks")
    started.verify("geventio idle")
    # One round trip through the worker after the last run() returned, so
    # the loop has settled every task before memory is measured.
    echo = _Echo.start(io)
    if echo.ask("settled", WAIT) != "settled":
        raise BenchError("geventio: the settling ask got a wrong answer")
    echo.stop()


def idle_tasks(n: int, sample: Callable[[str], None]) -> None:
    io = IOSystem("bench", workers=1)
    keep: list[ProxyActor] = []
    _start_idle(io, 100, keep)
    sample("before")
    _start_idle(io, n, keep)
    sample("after")


# -- i: start and stop --------------------------------------------------------


def system_start() -> Any:
    return IOSystem("bench", workers=1)


def system_stop(system: Any) -> None:
    if system.shutdown():
        raise BenchError("geventio: a worker did not stop")
