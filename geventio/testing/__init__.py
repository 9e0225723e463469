"""Helpers for testing code built on geventio, and an opt-in pytest plugin.

Everything here waits on events with a bound instead of sleeping: tests
built with it are deterministic, and a hang fails within the bound. All
bounds pass through :func:`scaled`, so a slow machine can stretch them with
the ``GEVENTIO_TEST_TIMEOUT_SCALE`` environment variable (for example ``3``).

The pytest fixtures live in :mod:`geventio.testing.plugin`; see there how to
enable them.

.. versionadded:: 0.1
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from time import perf_counter
from typing import Any

import gevent
import greenlet

from .. import _native
from .._iosystem import IOSystem
from .._mailbox import OneShot
from .._messages import Terminated
from .._proxy import ProxyActor, _current_proxy
from .._task import _check_delay, _task_cell
from .._worker import Worker
from ..errors import GeventIOError

__all__ = [
    "DEFAULT_TIMEOUT",
    "Probe",
    "never_blocks_hub",
    "scaled",
    "wait_handled",
    "wait_idle",
    "wait_until",
]

#: The bound, in seconds before scaling, of every wait that is given none.
DEFAULT_TIMEOUT = 5.0


def _check_count(what: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, got {value!r}")
    if value < 0:
        raise ValueError(f"{what} must not be negative, got {value!r}")
    return value


def scaled(seconds: float) -> float:
    """Return *seconds* times ``GEVENTIO_TEST_TIMEOUT_SCALE`` (default 1).

    Raises:
        TypeError, ValueError: *seconds* is not a non-negative number.
        ValueError: the variable is set but is not a positive number.
    """
    seconds = _check_delay("seconds", seconds)
    raw = os.environ.get("GEVENTIO_TEST_TIMEOUT_SCALE", "1")
    try:
        factor = float(raw)
    except ValueError:
        factor = -1.0
    if not factor > 0:
        raise ValueError(
            f"GEVENTIO_TEST_TIMEOUT_SCALE must be a positive number, got {raw!r}"
        )
    return seconds * factor


def _bound(timeout: float | None) -> float:
    if timeout is not None:
        _check_delay("timeout", timeout)
    return scaled(DEFAULT_TIMEOUT if timeout is None else timeout)


class Probe(ProxyActor):
    """A stand-in task for tests: whatever is told to it queues up here.

    Pass it as a ``sender`` (replies then come to the probe), hand it to a
    task as a collaborator, or :meth:`watch` a task with it. It is safe to
    tell from any thread or hub; its waiting methods block only the calling
    greenlet on a hub and the calling thread elsewhere, each for a bounded
    time (:func:`scaled`), and fail the test with an :exc:`AssertionError`
    saying what was expected and what came instead.

    A probe is not a task: asking it raises :exc:`~geventio.GeventIOError`.
    """

    __slots__ = (
        "_lock",
        "_queue",
        "_signal",
        "_stopped",
        "dropped",
        "last_sender",
        "name",
    )

    def __init__(self, name: str = "probe") -> None:
        # Deliberately no cell: a probe is a proxy to a queue, not to a task.
        self.name = name
        self._lock = _native.allocate_lock()
        self._queue: deque[tuple[Any, ProxyActor | None]] = deque()
        self._signal = OneShot()
        self._stopped = False
        #: Messages told after :meth:`stop`, and so dropped.
        self.dropped = 0
        self.last_sender: ProxyActor | None = None

    # -- the ProxyActor side ------------------------------------------------

    def tell(self, message: Any, sender: ProxyActor | None = None) -> None:
        """Queue *message* for the test; any thread or hub; never blocks.

        Inside a task, *sender* defaults to that task's proxy, as for any
        proxy.
        """
        if self._stopped:
            self.dropped += 1  # a stopped probe takes nothing, like a proxy
            return
        if sender is None:
            sender = _current_proxy()
        with self._lock:
            self._queue.append((message, sender))
            signal = self._signal
        signal.set()

    def ask(self, message: Any, timeout: float | None = None) -> Any:
        raise GeventIOError(f"{self!r} is a probe, not a task: it cannot answer")

    def ask_future(self, message: Any, timeout: float | None = None) -> Any:
        raise GeventIOError(f"{self!r} is a probe, not a task: it cannot answer")

    def join(self, timeout: float | None = None) -> bool:
        raise GeventIOError(f"{self!r} is a probe, not a task: it never unbinds")

    def on_stopped(self, callback: Any) -> None:
        raise GeventIOError(f"{self!r} is a probe, not a task: it never unbinds")

    def stop(self, drain: bool = False) -> None:
        """Mark the probe stopped (:attr:`is_alive` becomes False)."""
        self._stopped = True

    @property
    def is_alive(self) -> bool:
        return not self._stopped

    def __repr__(self) -> str:
        return f"<Probe {self.name!r}, {len(self._queue)} message(s) waiting>"

    # -- the test's side ----------------------------------------------------

    def _next(self, timeout: float) -> tuple[Any, ProxyActor | None] | None:
        deadline = _native.monotonic() + timeout
        while True:
            with self._lock:
                if self._queue:
                    return self._queue.popleft()
                if self._signal.done:
                    self._signal = OneShot()
                signal = self._signal
            remaining = deadline - _native.monotonic()
            if remaining <= 0 or not signal.wait(remaining):
                return None

    def expect(self, expected: Any = None, timeout: float | None = None) -> Any:
        """Return the next message, checking it against *expected*.

        Args:
            expected: the message it must equal, or a callable that must
                return true for it (None accepts any message).
            timeout: how long to wait, in seconds before scaling.

        Raises:
            AssertionError: nothing came in time, or the message did not
                match.
        """
        bound = _bound(timeout)
        item = self._next(bound)
        if item is None:
            wanted = "any message" if expected is None else repr(expected)
            raise AssertionError(
                f"{self!r}: expected {wanted} within {bound} s, got nothing"
            )
        message, sender = item
        self.last_sender = sender
        if expected is None:
            return message
        matches = expected(message) if callable(expected) else message == expected
        if not matches:
            raise AssertionError(f"{self!r}: expected {expected!r}, got {message!r}")
        return message

    def receive(self, count: int, timeout: float | None = None) -> list[Any]:
        """Return the next *count* messages, waiting at most *timeout* in all.

        Raises:
            AssertionError: fewer than *count* came in time.
            TypeError, ValueError: *count* is not an int >= 0.
        """
        _check_count("count", count)
        bound = _bound(timeout)
        deadline = _native.monotonic() + bound
        got: list[Any] = []
        while len(got) < count:
            item = self._next(max(0.0, deadline - _native.monotonic()))
            if item is None:
                raise AssertionError(
                    f"{self!r}: expected {count} messages within {bound} s, got {got!r}"
                )
            got.append(item[0])
            self.last_sender = item[1]
        return got

    def expect_no_message(self, timeout: float = 0.1) -> None:
        """Check that nothing arrives for *timeout* seconds (scaled).

        This one always waits the whole time: keep it short.

        Raises:
            AssertionError: a message arrived.
        """
        item = self._next(scaled(_check_delay("timeout", timeout)))
        if item is not None:
            raise AssertionError(f"{self!r}: expected no message, got {item[0]!r}")

    def reply(self, message: Any) -> None:
        """Tell *message* to the sender of the last message received."""
        if self.last_sender is None:
            raise AssertionError(
                f"{self!r}: the last message had no sender to reply to"
            )
        self.last_sender.tell(message, self)

    def watch(self, proxy: ProxyActor) -> None:
        """Receive a :class:`~geventio.Terminated` once *proxy*'s task ends.

        Any thread or hub; never blocks. Sent at once if it already ended.
        """

        _task_cell(proxy).add_watcher(None, self._terminated)

    def _terminated(self, terminated: Terminated) -> None:
        self.tell(terminated, None)


def wait_until(
    predicate: Callable[[], object],
    timeout: float | None = None,
    what: str = "a condition",
) -> None:
    """Wait until ``predicate()`` is true, re-checking with a short back-off.

    For states nothing signals (the OS reaping a thread, a counter read
    from outside); anything that can be told or asked is better awaited
    with a :class:`Probe` or an ask. Blocks the calling thread (and its hub,
    if it has one) for at most *timeout* seconds, scaled.

    Raises:
        AssertionError: the predicate stayed false.
        TypeError: *predicate* is not callable.
    """
    if not callable(predicate):
        raise TypeError(f"predicate must be callable, got {predicate!r}")
    bound = _bound(timeout)
    deadline = _native.monotonic() + bound
    delay = 0.0005
    while not predicate():
        if _native.monotonic() > deadline:
            raise AssertionError(f"timed out after {bound} s waiting for {what}")
        _native.sleep(delay)
        delay = min(delay * 2, 0.02)


def _wait_on_hub(
    worker: Worker, predicate: Callable[[], bool], timeout: float | None, what: str
) -> None:
    """Evaluate *predicate* on *worker*'s hub until true; wait for that."""
    bound = _bound(timeout)
    done = OneShot()

    def check() -> None:
        if done.done:
            return  # the waiter gave up
        if predicate():
            done.set()
        else:
            # Look again soon; a timer rather than a callback, so a task
            # blocked in I/O does not turn this into a busy loop.
            timer = worker.loop.timer(0.001)

            def again() -> None:
                timer.close()
                check()

            timer.start(again)

    if not worker._inbox.call_soon(check):
        raise AssertionError(f"{worker!r} is not running")
    if not done.wait(bound):
        done.fail(AssertionError("gave up"))
        raise AssertionError(f"timed out after {bound} s waiting for {what}")


def wait_idle(target: IOSystem | Worker, timeout: float | None = None) -> None:
    """Wait until no message is queued or being handled on *target*.

    *target* is an IO system (all its workers) or one worker. Checked on
    each worker's own hub. Blocks the calling greenlet on a hub, the
    calling thread elsewhere, for at most *timeout* seconds, scaled.

    Raises:
        AssertionError: still busy when the time ran out.
        TypeError: *target* is neither an IOSystem nor a Worker.
    """
    if not isinstance(target, (IOSystem, Worker)):
        raise TypeError(f"target must be an IOSystem or a Worker, got {target!r}")
    workers = target.workers if isinstance(target, IOSystem) else (target,)
    for worker in workers:

        def idle(worker: Worker = worker) -> bool:
            return not worker._inbox.pending() and all(
                cell.runner is None and not cell.mailbox for cell in worker._cells
            )

        _wait_on_hub(worker, idle, timeout, f"{worker.name} to be idle")


def wait_handled(proxy: ProxyActor, count: int, timeout: float | None = None) -> None:
    """Wait until *proxy*'s task has handled at least *count* messages.

    Checked on the task's own hub. Blocks the calling greenlet on a hub,
    the calling thread elsewhere, for at most *timeout* seconds, scaled.

    Raises:
        AssertionError: fewer were handled when the time ran out.
        TypeError, ValueError: *proxy* is not a task's ProxyActor, or
            *count* is not an int >= 0.
    """

    cell = _task_cell(proxy)
    _check_count("count", count)
    _wait_on_hub(
        cell.worker,
        lambda: cell.handled >= count,
        timeout,
        f"{cell.describe()} to handle {count} messages",
    )


@contextmanager
def never_blocks_hub(max_blocking_time: float = 0.05) -> Iterator[None]:
    """Fail if the body keeps its hub from running longer than the limit.

    Use it around code running on a hub (inside a task, typically). Every
    stretch of the body during which the calling thread's hub did not get
    to run, up to its end, must be shorter than *max_blocking_time*: a body
    that yields often passes however long it takes; a quick one that never
    yields passes too.

    Known shortcoming: it is not one of gevent's own tracers (see below
    why), so gevent's monitoring settings do not apply to it.

    It watches greenlet switches with :func:`greenlet.settrace`, the hook
    gevent's own :class:`gevent.util.assert_switches` uses (and chains to
    any trace function already installed). gevent's ready-made tracers are
    not used as they are: the hub-only one counts from time zero, failing a
    quick body that never switches, and the other one measures the whole
    body rather than each stretch.

    Raises:
        AssertionError: the hub was kept from running too long, saying for
            how long.
        TypeError, ValueError: *max_blocking_time* is not a positive number.
    """
    _check_delay("max_blocking_time", max_blocking_time, positive=True)
    hub = gevent.get_hub()
    blocked_since = perf_counter()  # the body runs, so the hub does not
    worst = 0.0

    def trace(event: str, args: Any) -> None:
        nonlocal blocked_since, worst
        if event in ("switch", "throw"):
            origin, target = args
            now = perf_counter()
            if target is hub:
                worst = max(worst, now - blocked_since)
            elif origin is hub:
                blocked_since = now
        if previous is not None:
            previous(event, args)

    previous = greenlet.settrace(trace)
    try:
        yield
    finally:
        greenlet.settrace(previous)
    worst = max(worst, perf_counter() - blocked_since)
    if worst > max_blocking_time:
        raise AssertionError(
            f"the hub was kept from running for {worst:.4f} s "
            f"(limit {max_blocking_time:.4f} s)"
        )
