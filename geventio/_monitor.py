"""The IO system's service thread: blocking detection and event delivery.

Blocking detection tells which task holds which worker's loop, and how
long.

Each worker's hub runs a cheap heartbeat timer; one native monitor thread
per IO system looks at the heartbeats. A heartbeat that is late by more
than the system's threshold means something holds that hub without
yielding; the monitor then logs, once per episode, the worker, the task
whose greenlet is running there (found by walking the blocked thread's
frames up to the task greenlet's entry point) and the blocked stack.

Why not gevent's own monitor thread: it is configured process-wide
(``gevent.config.max_blocking_time``), starts one thread per hub and traces
every greenlet switch, which taxes the message path. A heartbeat costs a
few timer callbacks a second and allows one threshold per IO system. The
report is still published as gevent's :class:`gevent.events.EventLoopBlocked`,
so code that subscribes to gevent's events sees geventio's workers too.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import zope.event
from gevent.events import EventLoopBlocked

from . import _native
from ._cell import _Cell
from ._mailbox import OneShot
from .events import WorkerBlocked, notify_on_hub

if TYPE_CHECKING:
    from ._iosystem import IOSystem
    from ._worker import Worker

__all__ = ["ServiceThread", "blocking_cell"]

log = logging.getLogger("geventio.blocking")
# Errors of user callbacks run on the service thread (zope.event
# subscribers, on_stopped callbacks, future done-callbacks).
callback_log = logging.getLogger("geventio.service")


def blocking_cell(worker: Worker) -> _Cell | None:
    """The cell whose task greenlet runs on *worker*'s thread now, if any.

    Any thread. Reads the other thread's current frames (a snapshot: by the
    time it returns the thread may have moved on).
    """
    frame = sys._current_frames().get(worker.ident or -1)
    while frame is not None:
        cell = frame.f_locals.get("self") if frame.f_code is _GUARD_CODE else None
        if isinstance(cell, _Cell):
            return cell
        frame = frame.f_back
    return None


_GUARD_CODE = _Cell._guard.__code__


class ServiceThread:
    """The one native helper thread of an IO system.

    It watches the workers' heartbeats (when the system has a blocking
    threshold) and delivers the system's events to ``zope.event``
    subscribers, so that neither ever runs on a worker hub. Started by the
    IO system; stopped and joined by its shutdown.

    Known shortcoming: one thread does both jobs, so a slow ``zope.event``
    subscriber delays blocking reports for its IO system. A second thread
    per system would cost more than the rare slow subscriber does.
    """

    def __init__(self, io: IOSystem, threshold: float | None) -> None:
        self.io = io
        self.threshold = threshold
        self.period = None if threshold is None else threshold / 2
        self._calls: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        # Released to wake the thread: by call_soon(), stop() and by each
        # worker as it exits.
        self._kick = _native.allocate_lock()
        self._kick.acquire()
        # Orders call_soon() against the thread's exit, so that a call is
        # either queued before the last delivery or run by its caller.
        self._lock = _native.allocate_lock()
        self._exited = False
        self._done = OneShot()
        self._running = True
        self._ident = -1

    def start(self) -> None:
        self._ident = _native.start_new_thread(self._main, ())

    def is_current_thread(self) -> bool:
        """True when called from this service thread itself."""
        return bool(_native.get_ident() == self._ident)

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the thread; True once it has exited.

        Any thread or hub but its own; blocks the calling greenlet on a hub
        (the calling thread elsewhere) for at most *timeout* seconds.
        """
        self._running = False
        self._wake()
        return self._done.wait(timeout)

    def publish(self, event: Any) -> None:
        """Queue *event* for ``zope.event`` subscribers; any thread."""
        notify_on_hub(event)
        if zope.event.subscribers:
            self.call_soon(zope.event.notify, event)

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on this thread, soon; any thread; never blocks.

        Once the thread has exited (the IO system is shut down) it runs in
        the calling thread instead, so nothing queued is ever lost.
        """
        with self._lock:
            exited = self._exited
            if not exited:
                self._calls.append((fn, args))
        if exited:
            self._run(fn, args)
        else:
            self._wake()

    def _wake(self) -> None:
        try:
            self._kick.release()
        except RuntimeError:
            pass  # already awake

    def _finished(self) -> bool:
        # Also true after a shutdown called from one of the system's own
        # tasks, which does not wait to stop this thread itself.
        return not self.io._running and all(w._stopped.done for w in self.io.workers)

    def _main(self) -> None:
        forget_name = _native.name_this_thread(f"{self.io.name}-service")
        try:
            next_check = _native.monotonic()
            while self._running and not self._finished():
                if self.period is None:
                    self._kick.acquire()
                else:
                    wait = next_check - _native.monotonic()
                    if wait > 0:
                        self._kick.acquire(True, wait)
                self._deliver()
                if self.period is not None and _native.monotonic() >= next_check:
                    next_check = _native.monotonic() + self.period
                    for worker in self.io.workers:
                        self.check(worker)
        except Exception:
            log.exception("the service thread of %r failed", self.io)
        finally:
            with self._lock:
                self._exited = True
            self._deliver()
            forget_name()
            self._done.set()

    def _deliver(self) -> None:
        calls = self._calls
        while calls:
            fn, args = calls.popleft()
            self._run(fn, args)

    @staticmethod
    def _run(fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            fn(*args)
        except BaseException:
            # SystemExit included: a callback must not end this thread.
            callback_log.exception("%r raised on the service thread", fn)

    def check(self, worker: Worker) -> None:
        """Report *worker* once per episode while its loop is stalled."""
        lag = worker.loop_lag()
        threshold = self.threshold
        if threshold is None or lag < threshold or not worker.is_running:
            return
        # An episode is a stretch without heartbeats: the time of the last
        # beat names it, so a stall after even one beat is a new one.
        episode = worker._last_beat
        if worker._reported_episode == episode:
            return
        worker._reported_episode = episode
        cell = blocking_cell(worker)
        frame = sys._current_frames().get(worker.ident or -1)
        stack = "".join(traceback.format_stack(frame)) if frame is not None else ""
        who = cell.describe() if cell is not None else "no task (framework or hub)"
        log.warning(
            "IO system %r: worker %s blocked for %.3f s (threshold %.3f s) by %s;"
            " blocked stack:\n%s",
            self.io.name,
            worker.name,
            lag,
            threshold,
            who,
            stack,
        )
        worker._blocked_by = who
        self.publish(WorkerBlocked(worker, who, lag, stack))
        running = None
        if cell is not None:
            # Of the task's greenlets only the running one has no saved
            # frame: that is the greenlet holding the loop.
            running = next(
                (g for g in list(cell.greenlets) if g and g.gr_frame is None), None
            )
        self.publish(
            EventLoopBlocked(running, threshold, stack.splitlines(), hub=worker.hub)
        )
