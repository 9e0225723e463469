"""What every implementation in the benchmark shares: native waiting, the
records that receivers update to prove each message arrived, and process
resource counts.

Receivers update these records inline, with the same few lines in every
implementation, rather than through a method: a call per message would add
the same fixed cost to every column and blur the ratios between them.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Sequence
from time import perf_counter
from typing import Any

from .. import _native

__all__ = [
    "WAIT",
    "BenchError",
    "Gate",
    "InOrder",
    "Latch",
    "NativeThread",
    "Outcome",
    "PerSender",
    "Rally",
    "Started",
    "latency_figures",
    "open_fds",
    "os_threads",
    "rss_bytes",
    "settle",
    "timed_senders",
    "vms_bytes",
]

# Seconds; the bound on every wait. A wait that runs out means a message
# was lost, which is a failed run, never a slow one.
WAIT = 120.0

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class BenchError(Exception):
    """A run could not be verified: a message was lost, repeated or out of
    order, or a wait ran out. The figure is wrong, not merely slow."""


class Latch:
    """Opened once, from any thread; a plain thread waits for it.

    A native lock, so that waiting never depends on a gevent hub. Waiting
    on it from a greenlet would block that greenlet's whole hub; nothing in
    the benchmark does.
    """

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = _native.allocate_lock()
        self._lock.acquire()

    def release(self) -> None:
        """Open the latch; any thread; a second call raises RuntimeError."""
        self._lock.release()

    def wait(self, what: str, timeout: float = WAIT) -> None:
        """Block the calling thread until opened.

        Raises:
            BenchError: not opened within *timeout* seconds.
        """
        if not self._lock.acquire(True, timeout):
            raise BenchError(f"timed out after {timeout:g} s waiting for {what}")


class NativeThread:
    """``fn(*args)`` on a new OS thread, whatever was monkey-patched.

    :meth:`join` waits for it and re-raises what it raised.
    """

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self._done = Latch()
        self._error: BaseException | None = None
        _native.start_new_thread(self._main, (fn, args))

    def _main(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            fn(*args)
        except BaseException as exc:
            self._error = exc
        finally:
            self._done.release()

    def join(self, what: str) -> None:
        """Block the calling thread until the function returned; re-raise."""
        self._done.wait(what)
        if self._error is not None:
            raise self._error


class Gate:
    """Holds sender threads at the start line until the clock starts.

    Each sender calls :meth:`arrive`; the timing thread calls :meth:`open`
    once every sender waits there, so no thread start-up is timed.
    """

    def __init__(self, parties: int) -> None:
        self._lock = _native.allocate_lock()
        self._missing = parties
        self._all_here = Latch()
        self._open = Latch()

    def arrive(self) -> None:
        """Sender threads: wait here until the gate opens."""
        with self._lock:
            self._missing -= 1
            last = self._missing == 0
        if last:
            self._all_here.release()
        self._open.wait("the start signal")
        # Pass the open gate on to the next waiting sender.
        self._open.release()

    def open(self) -> float:
        """Timing thread: wait for every sender, then let them all go.

        Returns:
            the :func:`time.perf_counter` reading taken just before.
        """
        self._all_here.wait("the sender threads to be ready")
        t0 = perf_counter()
        self._open.release()
        return t0


def timed_senders(
    send: Callable[[int, int], None], senders: int, n: int, done: Latch
) -> float:
    """Run ``send(index, n)`` on *senders* native threads at once.

    Returns:
        seconds from the start signal until *done* opened (the receiver
        saw the last message).

    Raises:
        BenchError: *done* did not open in time, or a sender raised.
    """
    gate = Gate(senders)

    def sender(index: int) -> None:
        gate.arrive()
        send(index, n)

    threads = [NativeThread(sender, index) for index in range(senders)]
    t0 = gate.open()
    done.wait(f"{senders * n} messages from {senders} threads")
    elapsed = perf_counter() - t0
    for thread in threads:
        thread.join("a sender thread")
    return elapsed


class InOrder:
    """What one receiver saw of messages ``0 .. n-1`` from one sender.

    The receiver's lines, the same in every implementation::

        if message != state.expected:
            state.bad += 1
        state.expected = message + 1
        if message == state.last:
            state.done.release()
    """

    __slots__ = ("bad", "done", "expected", "last")

    def __init__(self, n: int) -> None:
        self.expected = 0
        self.bad = 0
        self.last = n - 1
        self.done = Latch()

    def verify(self, what: str) -> int:
        """Return how many messages arrived, each once and in order.

        Raises:
            BenchError: one was lost, repeated or out of order.
        """
        n = self.last + 1
        if self.bad or self.expected != n:
            raise BenchError(
                f"{what}: {self.bad} message(s) out of order, lost or repeated "
                f"(next expected {self.expected} of {n})"
            )
        return n


class PerSender:
    """What one receiver saw of ``(sender, seq)`` messages, per sender.

    The receiver's lines, the same in every implementation::

        sender, seq = message
        if seq != state.next[sender]:
            state.bad += 1
        state.next[sender] = seq + 1
        state.left -= 1
        if not state.left:
            state.done.release()
    """

    __slots__ = ("bad", "done", "left", "n", "next")

    def __init__(self, senders: int, n: int) -> None:
        self.next = [0] * senders
        self.n = n
        self.left = senders * n
        self.bad = 0
        self.done = Latch()

    def verify(self, what: str) -> int:
        """Return how many messages arrived, each once, in per-sender order.

        Raises:
            BenchError: one was lost, repeated or out of order.
        """
        if self.bad or self.left or any(seq != self.n for seq in self.next):
            raise BenchError(
                f"{what}: {self.bad} message(s) out of per-sender order; "
                f"next expected per sender {self.next}, {self.n} each"
            )
        return len(self.next) * self.n


class Rally:
    """A ping-pong of ``n`` round trips between sides A and B.

    The timing thread sets :attr:`t0` and tells B ``0`` on A's behalf. B
    answers ``x + 1`` to every even ``x``, A answers ``y + 1`` to every odd
    ``y`` and stops the clock on ``2n - 1``. Each side checks each number::

        # side B, on x            # side A, on y
        if x != r.pong_next:      if y != r.ping_next:
            r.bad += 1                r.bad += 1
        r.pong_next = x + 2       r.ping_next = y + 2
        reply(x + 1)              if y >= r.end:
                                      r.finish()
                                  else:
                                      reply(y + 1)
    """

    __slots__ = ("bad", "done", "elapsed", "end", "n", "ping_next", "pong_next", "t0")

    def __init__(self, n: int) -> None:
        self.n = n
        self.end = 2 * n - 1
        self.ping_next = 1
        self.pong_next = 0
        self.bad = 0
        self.t0 = 0.0
        self.elapsed = 0.0
        self.done = Latch()

    def finish(self) -> None:
        """Side A, on the last number: stop the clock."""
        self.elapsed = perf_counter() - self.t0
        self.done.release()

    def verify(self, what: str) -> int:
        """Return the number of round trips, each checked on both sides.

        Raises:
            BenchError: a number was lost, repeated or out of order.
        """
        if self.bad or self.ping_next != 2 * self.n + 1 or self.pong_next != 2 * self.n:
            raise BenchError(
                f"{what}: {self.bad} bad number(s); A expected {self.ping_next}, "
                f"B expected {self.pong_next} after {self.n} round trips"
            )
        return self.n


class Started:
    """Counts tasks that ran their first line; opens :attr:`done` at *n*.

    :meth:`hit` takes a native lock, because with Pykka and plain threads
    every task runs it on a thread of its own.
    """

    __slots__ = ("_lock", "count", "done", "target")

    def __init__(self, n: int) -> None:
        self._lock = _native.allocate_lock()
        self.count = 0
        self.target = n
        self.done = Latch()

    def hit(self) -> None:
        """A task ran its first line; any thread."""
        with self._lock:
            self.count += 1
            last = self.count == self.target
        if last:
            self.done.release()

    def verify(self, what: str) -> int:
        """Return how many tasks started, each exactly once.

        Raises:
            BenchError: the count is off.
        """
        if self.count != self.target:
            raise BenchError(f"{what}: {self.count} of {self.target} tasks ran")
        return self.count


class Outcome:
    """Figures a task measured on its own thread, handed back to the timer."""

    __slots__ = ("done", "error", "samples")

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.error: BaseException | None = None
        self.done = Latch()

    def wait(self, what: str) -> list[float]:
        """Wait for the samples; re-raise what the measuring task raised."""
        self.done.wait(what)
        if self.error is not None:
            raise self.error
        return self.samples


def latency_figures(samples: Sequence[float], asked: int) -> dict[str, float]:
    """Median and 99th percentile of round trips, in microseconds.

    Raises:
        BenchError: fewer samples than asks (some ask was not answered).
    """
    if len(samples) != asked:
        raise BenchError(f"{len(samples)} round trips measured of {asked}")
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {
        "median": statistics.median(ordered) * 1e6,
        "p99": p99 * 1e6,
        "checked": float(asked),
    }


def os_threads() -> int:
    """How many OS threads this process has, from /proc."""
    return len(os.listdir("/proc/self/task"))


def open_fds() -> int:
    """How many file descriptors this process has open, from /proc."""
    return len(os.listdir("/proc/self/fd"))


def _statm(field: int) -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[field]) * _PAGE


def rss_bytes() -> int:
    """Resident set size of this process, in bytes."""
    return _statm(1)


def vms_bytes() -> int:
    """Virtual memory size of this process, in bytes."""
    return _statm(0)


def settle(count: Callable[[], int], target: int, timeout: float = 1.0) -> int:
    """Return ``count()`` once it is at most *target*, or after *timeout*.

    A joined thread can linger in /proc for a moment after it signalled
    that it finished; this gives the kernel that moment, and no more.
    """
    deadline = perf_counter() + timeout
    value = count()
    while value > target and perf_counter() < deadline:
        _native.sleep(0.002)
        value = count()
    return value
