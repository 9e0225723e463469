"""IOSystem: a named group of workers."""

from __future__ import annotations

import atexit
import ctypes
import itertools
import logging
import os
import weakref
from typing import Any

from zope.interface import implementer

from . import _native
from ._mailbox import current_inbox
from ._monitor import ServiceThread
from ._proxy import ProxyActor, _check_timeout
from ._worker import Worker, prepare_gevent
from .errors import StallInterrupted
from .events import DeadLetter, wanted
from .interfaces import IIOSystem

__all__ = ["IOSystem"]

log = logging.getLogger(__name__)
_dead_log = logging.getLogger("geventio.dead_letters")

# Systems still running, shut down at interpreter exit so that every task
# gets its on_unbind even in programs that never call shutdown().
_running_systems: weakref.WeakSet[IOSystem] = weakref.WeakSet()
_EXIT_TIMEOUT = 5.0


def _check_threshold(threshold: object) -> float | None:
    if threshold is None:
        return None
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise TypeError(
            f"blocking_threshold must be a number of seconds or None, got {threshold!r}"
        )
    if not threshold > 0:
        raise ValueError(f"blocking_threshold must be positive, got {threshold!r}")
    return float(threshold)


def _interrupt(worker: Worker) -> bool:
    """Raise StallInterrupted in *worker*'s thread; True if delivered."""
    if worker.ident is None:
        return False
    delivered = ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(worker.ident), ctypes.py_object(StallInterrupted)
    )
    return bool(delivered == 1)


def _check_workers(workers: object) -> int:
    if workers is None:
        return os.cpu_count() or 1
    if isinstance(workers, bool) or not isinstance(workers, int):
        raise TypeError(f"workers must be a positive int or None, got {workers!r}")
    if workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    return workers


@implementer(IIOSystem)
class IOSystem:
    """A named group of workers: see :class:`~geventio.interfaces.IIOSystem`.

    ``IOSystem(name, workers)`` starts *workers* native threads (default:
    one per CPU), each running its own gevent hub, and returns once every
    hub is ready to take work. It blocks the calling greenlet (on a hub)
    or thread (elsewhere) while the threads start.

    Raises:
        TypeError: *name* is not a str, or *workers* is not an int.
        ValueError: *name* is empty, or *workers* is not positive.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        name: str = "iosystem",
        workers: int | None = None,
        *,
        blocking_threshold: float | None = 0.1,
    ) -> None:
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {name!r}")
        if not name:
            raise ValueError("name must not be empty")
        count = _check_workers(workers)
        self.blocking_threshold = _check_threshold(blocking_threshold)
        self.name = name
        self._service = ServiceThread(self, self.blocking_threshold)
        self._lock = _native.allocate_lock()
        self._running = True
        self._dead_letters = 0
        self._round_robin = itertools.count()
        prepare_gevent()
        self._workers = tuple(Worker(self, i) for i in range(count))
        for worker in self._workers:
            worker._launch()
        try:
            for worker in self._workers:
                worker._started.get()
        except BaseException:
            self.shutdown(timeout=_EXIT_TIMEOUT)
            raise
        self._service.start()
        _running_systems.add(self)
        log.debug("%r started", self)

    @property
    def workers(self) -> tuple[Worker, ...]:
        """The workers, in index order."""
        return self._workers

    @property
    def is_running(self) -> bool:
        """True until :meth:`shutdown` is first called."""
        return self._running

    @property
    def dead_letters(self) -> int:
        """How many messages were dropped as dead letters so far."""
        return self._dead_letters

    def _next_worker(self) -> Worker:
        return self._workers[next(self._round_robin) % len(self._workers)]

    def _dead_letter(self, to: ProxyActor, message: Any, sender: Any) -> None:
        """Count and log one message; any thread; never blocks."""
        from ._proxy import _ReplyHandle

        with self._lock:
            self._dead_letters += 1
            to._cell.worker.dead_letters += 1
        _dead_log.debug("dead letter to %r from %r: %r", to, sender, message)
        if wanted():
            self._service.publish(DeadLetter(to, message, sender))
        if isinstance(sender, _ReplyHandle):
            # An ask whose question can never be handled fails now, not
            # after its timeout.
            from .errors import ProxyStopped

            sender._fail(ProxyStopped(f"{to!r} stopped before handling {message!r}"))

    def stats(self) -> list[dict[str, Any]]:
        """One snapshot per worker (see :meth:`Worker.stats`); any thread."""
        return [worker.stats() for worker in self._workers]

    def shutdown(self, timeout: float | None = None) -> list[Worker]:
        """Unbind every task, stop every hub and join every worker thread.

        Idempotent; callable from any thread or hub. Blocks the calling
        greenlet (on a hub) or thread (elsewhere) until the workers stopped,
        or at most *timeout* seconds. Called from a task of this system, it
        only starts the shutdown and returns at once: the calling task is
        unbound with the rest, and its worker could not stop while the
        call waited on it.

        Returns:
            the workers that did not stop in time (empty when all stopped);
            a WARNING is logged naming them.

        Raises:
            TypeError, ValueError: *timeout* is not a non-negative number.
        """
        timeout = _check_timeout(timeout)
        with self._lock:
            first = self._running
            self._running = False
        if first:
            _running_systems.discard(self)
            log.debug("%r shutting down", self)
            for worker in self._workers:
                worker._request_shutdown()
        if any(worker._inbox is current_inbox() for worker in self._workers):
            # Called from a task of this system: that task is about to be
            # unbound, which kills the calling greenlet, and its worker
            # cannot stop while this call holds it. Waiting is pointless.
            return []
        stuck = self._join_workers(timeout)
        self._service.stop(timeout=None if not stuck else 0)
        if stuck:
            for worker in stuck:
                worker._abandoned = True
            log.warning(
                "IO system %r: %d worker(s) did not stop within %s s and are "
                "abandoned (left to finish on their own as daemon threads): %s",
                self.name,
                len(stuck),
                timeout,
                ", ".join(f"{w.name} (blocked by {w._blocked_by})" for w in stuck),
            )
        return stuck

    def _join_workers(self, timeout: float | None) -> list[Worker]:
        if timeout is None:
            for worker in self._workers:
                worker._wait_stopped(None)
            return []
        # First half of the timeout: let every worker stop on its own.
        start = _native.monotonic()
        pending = self._wait_all(list(self._workers), start + timeout / 2)
        # Second half: a worker whose loop is stalled will never get to its
        # shutdown; interrupt the pure-Python code holding it, if that is
        # what it is, and give it the rest of the time.
        for worker in pending:
            stalled = worker.loop_lag() > 0 or self.blocking_threshold is None
            if stalled and _interrupt(worker):
                log.warning(
                    "IO system %r: interrupted stalled %s", self.name, worker.name
                )
        return self._wait_all(pending, start + timeout)

    @staticmethod
    def _wait_all(workers: list[Worker], deadline: float) -> list[Worker]:
        return [
            w
            for w in workers
            if not w._wait_stopped(max(0.0, deadline - _native.monotonic()))
        ]

    def __enter__(self) -> IOSystem:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        state = "running" if self._running else "shut down"
        return f"<IOSystem {self.name!r} {state}, {len(self._workers)} worker(s)>"


@atexit.register
def _shutdown_at_exit() -> None:
    for system in list(_running_systems):
        system.shutdown(timeout=_EXIT_TIMEOUT)
