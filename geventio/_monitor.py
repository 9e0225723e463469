"""Blocking detection: which task holds which worker's loop, and how long.

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
from typing import TYPE_CHECKING, Any

from gevent.events import EventLoopBlocked
from zope.event import notify

from . import _native

if TYPE_CHECKING:
    from ._iosystem import IOSystem
    from ._task import _Cell
    from ._worker import Worker

__all__ = ["Monitor", "blocking_cell"]

log = logging.getLogger("geventio.blocking")


def blocking_cell(worker: Worker) -> _Cell | None:
    """The cell whose task greenlet runs on *worker*'s thread now, if any.

    Any thread. Reads the other thread's current frames (a snapshot: by the
    time it returns the thread may have moved on).
    """
    from ._task import _Cell

    frame = sys._current_frames().get(worker.ident or -1)
    while frame is not None:
        cell = frame.f_locals.get("self") if frame.f_code is _GUARD_CODE else None
        if isinstance(cell, _Cell):
            return cell
        frame = frame.f_back
    return None


def _guard_code() -> Any:
    from ._task import _Cell

    return _Cell._guard.__code__


_GUARD_CODE = _guard_code()


class Monitor:
    """The monitor thread of one IO system.

    Started by the IO system when it has a blocking threshold; stopped (and
    joined) by its shutdown. Nothing here runs on a worker's hub except the
    heartbeat, which :class:`Worker` owns.
    """

    def __init__(self, io: IOSystem, threshold: float) -> None:
        self.io = io
        self.threshold = threshold
        self.period = threshold / 2
        self._wakeup = _native.allocate_lock()
        self._wakeup.acquire()
        self._exited = _native.allocate_lock()
        self._exited.acquire()
        self._running = True

    def start(self) -> None:
        _native.start_new_thread(self._main, ())

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the thread; True once it has exited. Any thread but its own."""
        if self._running:
            self._running = False
            self._wakeup.release()
        if self._exited.acquire(True, -1 if timeout is None else timeout):
            self._exited.release()
            return True
        return False

    def _main(self) -> None:
        try:
            while not self._wakeup.acquire(True, self.period):
                for worker in self.io.workers:
                    self.check(worker)
        except Exception:
            log.exception("the blocking monitor of %r failed", self.io)
        finally:
            self._exited.release()

    def check(self, worker: Worker) -> None:
        """Report *worker* once per episode while its loop is stalled."""
        lag = worker.loop_lag()
        if lag < self.threshold:
            worker._reported_stall = False
            return
        if worker._reported_stall or not worker.is_running:
            return
        worker._reported_stall = True
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
            self.threshold,
            who,
            stack,
        )
        worker._blocked_by = who
        running = None
        if cell is not None:
            # Of the task's greenlets only the running one has no saved
            # frame: that is the greenlet holding the loop.
            running = next(
                (g for g in list(cell.greenlets) if g and g.gr_frame is None), None
            )
        notify(
            EventLoopBlocked(
                running, self.threshold, stack.splitlines(), hub=worker.hub
            )
        )
