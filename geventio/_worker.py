"""Worker: one native OS thread running its own gevent hub."""

from __future__ import annotations

import logging
import sys
from logging import WARNING
from typing import TYPE_CHECKING, Any

import gevent
from gevent.hub import Waiter
from greenlet import GreenletExit, getcurrent
from zope.interface import implementer

from . import _native
from ._cell import BOUND, _Cell
from ._logging import log as _log
from ._mailbox import Inbox, OneShot
from .errors import IOSystemShutdown
from .interfaces import IWorker

if TYPE_CHECKING:
    from ._iosystem import IOSystem
    from ._proxy import ProxyActor
    from ._task import Task

__all__ = ["Worker"]

log = logging.getLogger(__name__)

# How many parked job greenlets a worker keeps for reuse.
_POOL_SIZE = 64
# Mailbox runs a pooled greenlet takes one after the other before it parks.
_TAKE_AT_MOST = 32

# Settings gevent imports lazily while building a hub or using one.
_LAZY_GEVENT_SETTINGS = ("loop", "format_context", "resolver", "threadpool")


def prepare_gevent() -> None:
    """Import, on the calling thread, what gevent would import in workers.

    After ``patch_all()`` the import system's module locks are gevent locks;
    two worker threads importing the same module at once (gevent's loop
    implementation, while building their hubs) can then deadlock. Importing
    it here first, before any worker starts, leaves nothing to race on.
    """
    # Known shortcoming: only gevent's own lazy imports are done here. A
    # module that tasks import for the first time while running at once,
    # in a patched process, can still deadlock on the import lock; the
    # cure is importing it before starting them (docs/monkey.rst). The
    # import system is CPython's and its locks gevent's: not ours to fix.
    for setting in _LAZY_GEVENT_SETTINGS:
        getattr(gevent.config, setting)


@implementer(IWorker)
class Worker:
    """One native thread plus its hub.

    The contract is :class:`~geventio.interfaces.IWorker`.

    Created by :class:`~geventio.IOSystem`, never by users. Everything
    that touches the hub (its loop, its greenlets, the cells of its tasks)
    happens on the worker's own thread; other threads reach it only through
    its ``Inbox``.

    .. versionadded:: 0.1
    """

    def __init__(self, io: IOSystem, index: int) -> None:
        self.io = io
        self.index = index
        self.name = f"{io.name}-worker-{index}"
        self.hub: Any = None
        self.loop: Any = None
        self.ident: int | None = None
        self._inbox = Inbox(self._on_ready)
        self._cells: set[_Cell] = set()
        self._started = OneShot()
        self._stopped = OneShot()
        self._stopping = False
        self._finishing = False
        self._retired_handled = 0
        # Parked job greenlets (see _Cell.run_job); hub only.
        self._pool: list[Any] = []
        self.dead_letters = 0
        # Blocking detection: the heartbeat (on the hub) writes these; the
        # monitor thread and stats() read them.
        self._beat_period: float | None = None
        self._last_beat = 0.0
        self._max_stall = 0.0
        self._stalls = 0
        self._reported_episode = 0.0
        self._blocked_by: str | None = None
        self._abandoned = False

    # -- any thread -------------------------------------------------------

    def _launch(self) -> None:
        _native.start_new_thread(self._main, ())

    def _start_task(
        self,
        cls: type[Task],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        name: str | None = None,
    ) -> ProxyActor:
        cell = _Cell(cls, self, name)
        with self.io._lock:
            # Holding the system's lock orders this start before any
            # shutdown: the bind call is queued ahead of the shutdown call.
            if not self.io._running or self._inbox.closed:
                raise IOSystemShutdown(
                    f"cannot start {cls.__qualname__}: IO system "
                    f"{self.io.name!r} is shut down"
                )
            if name is not None:
                self.io._claim_name(cell)
            # Known to the worker from now on, so io.tasks() lists it and a
            # shutdown (queued after the bind) stops it.
            self._cells.add(cell)
            self._inbox.call_soon(self._bind, cell, args, kwargs)
        return cell.proxy

    def _request_shutdown(self) -> None:
        self._inbox.call_soon(self._begin_shutdown)

    def _hurry(self) -> None:
        """Cut short the hooks that keep this worker's shutdown waiting."""
        self._inbox.call_soon(self._cut_hooks_short)

    def _wait_stopped(self, timeout: float | None) -> bool:
        # Known shortcoming: this waits for the worker's Python code to
        # finish, not for its OS thread to exit, which takes a moment more
        # before Python 3.13: raw threads cannot be joined before it.
        return self._stopped.wait(timeout)

    @property
    def is_running(self) -> bool:
        """True from the hub being ready until the thread is finishing."""
        return self._started.done and not self._stopped.done and not self._inbox.closed

    def stats(self) -> dict[str, Any]:
        """A snapshot of this worker's counters; any thread; never blocks.

        Read without stopping the hub, so a figure may be a message or two
        behind, never ahead.
        """
        # Retired first: a task that ends between the two reads is then
        # missed for a moment instead of counted twice.
        retired = self._retired_handled
        cells = list(self._cells)
        return {
            "worker": self.name,
            "tasks": len(cells),
            "queued": sum(len(c.mailbox) for c in cells),
            "delivered": retired + sum(c.handled for c in cells),
            "dead_letters": self.dead_letters,
            "wakeups": self._inbox.wakeups,
            "loop_lag": self.loop_lag(),
            "max_stall": self._max_stall,
            "stalls": self._stalls,
            "abandoned": self._abandoned,
        }

    def loop_lag(self) -> float:
        """How late this worker's loop runs now, in seconds; any thread.

        0.0 while the hub keeps up, or when blocking detection is off.
        """
        period = self._beat_period
        if period is None or not self._last_beat:
            return 0.0
        return max(0.0, float(_native.monotonic() - self._last_beat - period))

    def __repr__(self) -> str:
        if self._stopped.done:
            state = "stopped"
        elif self._abandoned:
            state = "abandoned"
        elif self._stopping or self._inbox.closed:
            state = "stopping"
        elif self._started.done:
            state = "running"
        else:
            state = "starting"
        return f"<Worker {self.name} {state} thread={self.ident}>"

    # -- the worker's own thread ------------------------------------------

    def _main(self) -> None:
        hub = heartbeat = None
        forget_name = _native.name_this_thread(self.name)
        try:
            self.ident = _native.get_ident()
            hub = gevent.get_hub()
            hub.name = self.name
            self.hub = hub
            self.loop = hub.loop
            self._inbox.open(hub)
            stopper = self._stopper = Waiter(hub)
            heartbeat = self._start_heartbeat()
            self._started.set()
            log.debug("%s started", self.name)
            # The main greenlet waits here while the hub runs the loop;
            # _finish() resumes it once every task has unbound.
            stopper.get()
        except BaseException as exc:
            self._started.fail(exc)
            log.exception("%s crashed", self.name)
        finally:
            self._finish_thread(hub, heartbeat, forget_name)

    def _finish_thread(self, hub: Any, heartbeat: Any, forget_name: Any) -> None:
        """The worker thread's last steps: release the hub and its loop."""
        if sys.is_finalizing():
            # An abandoned worker that finishes while the interpreter exits:
            # switching greenlets or destroying the hub now can crash the
            # process. Leave everything to the OS.
            # Known shortcoming: one still inside greenlet code when
            # finalization begins can, rarely, abort the exiting process
            # (greenlet and CPython with daemon threads); Python offers no
            # way to stop that thread first.
            return
        if heartbeat is not None:
            heartbeat.close()
            self._beat_period = None  # no lag to report from now on
        self._inbox.close()
        self._inbox.drain_closed()
        if hub is not None:
            hub.destroy(destroy_loop=True)
        # Parked job greenlets die here, on their own thread.
        self._pool.clear()
        log.debug("%s stopped", self.name)
        forget_name()
        self._stopped.set()
        self.io._service._wake()  # it exits once every worker stopped

    def _start_heartbeat(self) -> Any:
        threshold = self.io.blocking_threshold
        if threshold is None:
            return None
        self._beat_period = period = threshold / 2
        self._last_beat = _native.monotonic()
        timer = self.loop.timer(period, period, ref=False)
        timer.start(self._beat)
        return timer

    # -- the worker's hub ----------------------------------------------------

    def _beat(self) -> None:
        now = _native.monotonic()
        late = now - self._last_beat - (self._beat_period or 0.0)
        self._last_beat = now
        if late > self._max_stall:
            self._max_stall = late
        threshold = self.io.blocking_threshold
        if threshold is not None and late >= threshold:
            self._stalls += 1

    def _bind(self, cell: _Cell, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        cell.run_job(cell.bind_and_run, args, kwargs)

    def _pooled_main(self, job: Any) -> None:
        """The body of a pooled job greenlet: run jobs, park in between.

        A job is ``(cell, function, args)``; it is handed over by switching
        into the greenlet (the first time as this function's argument,
        later as what ``hub.switch()`` returns). None ends the loop.
        """
        me = getcurrent()
        pool = self._pool
        hub = self.hub
        inbox = self._inbox
        ready = inbox._ready
        calls = inbox._calls
        taken = 0
        while job is not None:
            _cell, fn, args = job
            me.job_running = True
            fn(*args)
            me.job_running = False
            me.geventio_cell = None
            # Another task of this worker has messages (one this job told,
            # say): run its mailbox here rather than park and have the hub
            # switch into a greenlet again. Only while no call waits (a stop
            # goes ahead of messages) and for a bounded run, so the hub
            # still gets to its callbacks, timers and I/O.
            if ready and not calls and taken < _TAKE_AT_MOST:
                job = self._take_ready(me, ready[0])
                if job is not None:
                    taken += 1
                    continue
            taken = 0
            if len(pool) >= _POOL_SIZE or inbox._closed:
                return
            pool.append(me)
            job = hub.switch()

    def _take_ready(self, me: Any, cell: _Cell) -> Any:
        """The mailbox run of *cell*, the next ready cell, as a job for
        the pooled greenlet *me*; or None if the hub must see to it."""
        if (
            cell.state != BOUND
            or cell.runner is not None
            or not cell.mailbox
            or self._inbox._closed
        ):
            return None
        self._inbox._ready.popleft()
        me.geventio_cell = cell
        return cell.mailbox_job(me)

    def _on_ready(self, cell: _Cell) -> None:
        if self._inbox._closed:
            cell.drain_dead()
        else:
            cell.on_ready()

    def _begin_shutdown(self) -> None:
        self._stopping = True
        for cell in list(self._cells):
            cell.stop_on_hub("IO system shut down")
        self._maybe_finish()

    def _cut_hooks_short(self) -> None:
        # Hub greenlet. Unbinding kills whatever still runs for each task
        # (a slow shutdown_request first of all); a finalizer stuck in
        # on_unbind is ended too, and the unbinding completes without it.
        for cell in list(self._cells):
            if cell.reporting_failure:
                _log(
                    log,
                    WARNING,
                    "%s: reporting the failure of %s cut short: %r",
                    self.name,
                    cell.describe(),
                    cell.error,
                )
            cell.unbind("IO system shut down", cut_short=True)
            finalizer = cell.finalizer
            # Only one that is running on_unbind: a finalizer still waiting
            # to start must start, or on_unbind would never run at all.
            if finalizer is not None and finalizer.job_running:
                _log(
                    log,
                    WARNING,
                    "%s: on_unbind of %s cut short",
                    self.name,
                    cell.describe(),
                )
                finalizer.throw(GreenletExit)

    def _cell_finished(self, cell: _Cell) -> None:
        self._cells.discard(cell)
        self._retired_handled += cell.handled
        if self._stopping:
            self._maybe_finish()

    def _maybe_finish(self) -> None:
        if self._stopping and not self._cells and not self._finishing:
            self._finishing = True
            self.loop.run_callback(self._stopper.switch, None)
