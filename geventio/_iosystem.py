"""IOSystem: a named group of workers."""

from __future__ import annotations

import atexit
import ctypes
import itertools
import logging
import os
import sys
import traceback
import weakref
from logging import DEBUG
from typing import Any

from zope.interface import implementer

from . import _native
from ._cell import _Cell
from ._logging import log as _log
from ._mailbox import current_inbox
from ._monitor import ServiceThread, blocking_cell
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


def _indent(chunks: list[str], width: int) -> list[str]:
    pad = " " * width
    return [pad + line for chunk in chunks for line in chunk.rstrip("\n").split("\n")]


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


def _holding(worker: Worker) -> str:
    """What keeps *worker* from stopping, in words, for the log."""
    cell = blocking_cell(worker)
    if cell is not None:
        return f"held by {cell.describe()}"
    return "its loop runs, but a task's hooks or a blocking call did not end"


def _interrupt(worker: Worker) -> bool:
    """Raise StallInterrupted in *worker*'s thread; True if delivered."""
    # Known shortcoming: best effort. The exception lands only between
    # bytecodes, never inside a C call (a blocking socket call, a C loop),
    # and on CPython 3.13 it can skip an ``except`` in the frame it lands
    # in; the task still fails and on_failure sees it. CPython offers no
    # other way to stop code in another thread.
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
        self._names: dict[str, _Cell] = {}
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
        _log(_dead_log, DEBUG, "dead letter to %r from %r: %r", to, sender, message)
        if wanted():
            self._service.publish(DeadLetter(to, message, sender))
        if isinstance(sender, _ReplyHandle):
            # An ask whose question can never be handled fails now, not
            # after its timeout.
            from .errors import ProxyStopped

            sender._fail(ProxyStopped(f"{to!r} stopped before handling {message!r}"))

    # -- the registry -------------------------------------------------------

    def _claim_name(self, cell: _Cell) -> None:
        """Register *cell*'s name; the caller holds ``self._lock``."""
        assert cell.name is not None
        holder = self._names.get(cell.name)
        # A stopped task keeps its name only until it is stopped, so that
        # find() and start_named() agree on which names are free.
        if holder is not None and holder.alive:
            raise ValueError(
                f"IO system {self.name!r} already has a task named {cell.name!r}: "
                f"{holder.describe()}"
            )
        self._names[cell.name] = cell

    def _forget_name(self, cell: _Cell) -> None:
        if cell.name is not None:
            with self._lock:
                if self._names.get(cell.name) is cell:
                    del self._names[cell.name]

    def find(self, name: str) -> ProxyActor | None:
        """The proxy of the live task started as *name*, or None.

        Any thread or hub; never blocks. Names are per IO system: two
        systems may each have a task of the same name.

        Raises:
            TypeError: *name* is not a str.
        """
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {name!r}")
        with self._lock:
            cell = self._names.get(name)
        return cell.proxy if cell is not None and cell.alive else None

    def tasks(self) -> list[ProxyActor]:
        """The proxies of every live task of this system, by worker.

        Any thread or hub; never blocks; a snapshot.
        """
        return [
            cell.proxy
            for worker in self._workers
            for cell in list(worker._cells)
            if cell.alive
        ]

    def broadcast(self, message: Any, cls: type | None = None) -> int:
        """Tell *message* to every live task (of class *cls*, if given).

        Any thread or hub; never blocks.

        Returns:
            how many tasks it was told to.
        """
        if cls is not None and not isinstance(cls, type):
            raise TypeError(f"cls must be a class or None, got {cls!r}")
        proxies = [
            p for p in self.tasks() if cls is None or issubclass(p._cell.cls, cls)
        ]
        for proxy in proxies:
            proxy.tell(message)
        return len(proxies)

    def dump(self) -> str:
        """A text snapshot for debugging: each worker, its tasks, its stacks.

        Any thread; never blocks. For each worker: its thread and state,
        then each task (class, name, state, mailbox depth, the type of the
        message being handled), then the worker's greenlet tree with their
        stacks, as gevent's :class:`gevent.util.GreenletTree` formats them.
        Taken without stopping anything, so it may be slightly inconsistent.
        """
        from gevent.util import GreenletTree

        # gevent renders a greenlet that is running in *another* thread with
        # the caller's stack, so the tree is drawn without stacks and the
        # stacks come from the frames themselves.
        plain = {"running_stacks": False, "spawning_stacks": False, "locals": False}
        trees = {tree.greenlet: tree for tree in GreenletTree.forest()}
        frames = sys._current_frames()
        lines = [repr(self)]
        for worker in self._workers:
            stats = worker.stats()
            lines.append(
                f"{worker!r}: {stats['tasks']} task(s), {stats['queued']} queued, "
                f"{stats['delivered']} delivered, loop lag {stats['loop_lag']:.3f} s"
            )
            for cell in list(worker._cells):
                current = cell.current
                handling = type(current[0]).__name__ if current else "nothing"
                lines.append(
                    f"  task {cell.describe()}: mailbox {len(cell.mailbox)}, "
                    f"handling {handling}"
                )
                for g in list(cell.greenlets):
                    if g.gr_frame is not None:
                        lines.append(f"    suspended greenlet {g!r}:")
                        lines.extend(_indent(traceback.format_stack(g.gr_frame), 6))
            hub = worker.hub
            tree = trees.get(hub.parent) if hub is not None else None
            if tree is not None:
                lines.append("  greenlets:")
                lines.extend(_indent(tree.format_lines(details=plain), 4))
            frame = frames.get(worker.ident or -1)
            if frame is not None:
                lines.append("  thread stack (what runs now):")
                lines.extend(_indent(traceback.format_stack(frame), 4))
        return "\n".join(lines)

    def stats(self) -> list[dict[str, Any]]:
        """One counters snapshot per worker; any thread; never blocks.

        See :meth:`~geventio.Worker.stats` for what each one holds.
        """
        return [worker.stats() for worker in self._workers]

    def shutdown(self, timeout: float | None = None) -> list[Worker]:
        """Unbind every task, stop every hub and join every worker thread.

        Idempotent; callable from any thread or hub. Blocks the calling
        greenlet (on a hub) or thread (elsewhere) until the workers stopped,
        or at most *timeout* seconds. Called from a task of this system, it
        only starts the shutdown and returns at once: the calling task is
        unbound with the rest, and its worker could not stop while the
        call waited on it.

        Each task gets its ``shutdown_request`` and then its ``on_unbind``.
        With a *timeout*, once half of it has passed: a worker whose loop a
        task holds in pure-Python code is interrupted
        (:class:`~geventio.StallInterrupted` is raised in that code), and on
        the other workers the hooks still running are cut short with
        GreenletExit (``on_unbind`` then ends early; it still ran once).
        A worker still not stopped when the timeout ends (stuck in a C
        call, say) is abandoned: its daemon thread finishes on its own.

        Returns:
            the workers that did not stop in time (empty when all stopped);
            a WARNING is logged naming them and what holds them.

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
        deadline = None if timeout is None else _native.monotonic() + timeout
        stuck = self._join_workers(timeout)
        if not self._service.is_current_thread():
            # From one of its own callbacks, the service thread stops by
            # itself once that callback returns: waiting would deadlock.
            remaining = None if deadline is None else deadline - _native.monotonic()
            stopped = self._service.stop(timeout=0 if stuck else remaining)
            if not stopped and not stuck:
                log.warning(
                    "IO system %r: its service thread is still running a "
                    "callback or event subscriber; it ends when that returns",
                    self.name,
                )
        newly = [w for w in stuck if not w._abandoned]
        for worker in newly:
            self._abandon(worker)
        if newly:
            log.warning(
                "IO system %r: %d worker(s) did not stop within %s s and are "
                "abandoned (left to finish on their own as daemon threads): %s",
                self.name,
                len(newly),
                timeout,
                ", ".join(f"{w.name} ({_holding(w)})" for w in newly),
            )
        return stuck

    def _abandon(self, worker: Worker) -> None:
        """Give up on a stuck worker, from the shutdown's own thread.

        Its hub is never touched. Its proxies stop here (asks fail, later
        tells are dead letters) and the messages they had queued become
        dead letters, as a shutdown promises, whatever the stuck thread does
        later: everything used below is safe from any thread.
        """
        worker._abandoned = True
        for cell in list(worker._cells):
            cell.mark_dead()
            cell.drain_dead()

    def _join_workers(self, timeout: float | None) -> list[Worker]:
        if timeout is None:
            # A worker abandoned by an earlier, timed shutdown is not waited
            # for without a bound: it was given up on already.
            for worker in self._workers:
                if not worker._abandoned:
                    worker._wait_stopped(None)
            return [w for w in self._workers if not w._stopped.done]
        # First half of the timeout: let every worker stop on its own.
        start = _native.monotonic()
        pending = self._wait_all(list(self._workers), start + timeout / 2)
        # Second half. A worker whose loop is stalled in a task will never
        # get to its shutdown: interrupt the pure-Python code holding it,
        # if that is what it is. One whose loop runs is waiting for hooks
        # (shutdown_request, on_unbind) that take too long: cut them short.
        # Known shortcoming: a hook cut short does not finish its work;
        # the alternative is a shutdown that misses its own timeout.
        for worker in pending:
            stalled = worker.loop_lag() > 0 or self.blocking_threshold is None
            if stalled and blocking_cell(worker) is not None:
                if _interrupt(worker):
                    log.warning(
                        "IO system %r: raised StallInterrupted in stalled %s "
                        "(it takes effect when that thread next runs Python code)",
                        self.name,
                        worker.name,
                    )
            else:
                worker._hurry()
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
