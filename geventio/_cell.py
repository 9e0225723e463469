"""_Cell: the state of one task, shared by the task and its proxy.

Everything a task does runs in *task greenlets* on its worker's hub: one
that constructs, binds and runs it, one per burst of messages (the mailbox
runner, which exits when the mailbox is empty, so an idle task holds no
greenlet), and any the task spawns. Unbinding kills them all; once the last
one has ended, a finalizer greenlet stops the task's children, runs
``on_unbind`` and tells whoever watches the task.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gevent
from greenlet import GreenletExit, getcurrent, greenlet

from ._mailbox import OneShot
from ._messages import SYSTEM_MESSAGES, PoisonPill, StatusCheck, Terminated
from ._proxy import ProxyActor, _ReplyHandle
from .errors import GeventIOError, ProxyStopped
from .events import HookFailed, TaskBound, TaskFailed, TaskUnbound, wanted

if TYPE_CHECKING:
    from ._task import Task
    from ._worker import Worker

log = logging.getLogger("geventio.task")

# A task is "bound" from BINDING on: on_bind runs while BINDING, and
# messages are handled only once BOUND.
PENDING, BINDING, BOUND, UNBINDING, UNBOUND = range(5)
_STATE_NAMES = ("pending", "binding", "bound", "unbinding", "unbound")

# A mailbox runner yields to the hub after this many messages, so a long
# burst to one task does not starve the worker's other tasks, timers and I/O.
_YIELD_EVERY = 64

Watcher = tuple["_Cell | None", Callable[[Terminated], Any]]


class _TaskGreenlet(greenlet):  # type: ignore[misc]
    """A greenlet running code of one task; ``geventio_cell`` names it.

    Framework jobs (binding, mailbox runs, stops, finalizing) run on
    greenlets the worker keeps parked in a pool between jobs: starting a
    greenlet costs a stack allocation, resuming a parked one does not.
    ``job_running`` is true only while such a greenlet runs a job, so that
    a kill meant for one job never reaches a later one.
    """

    geventio_cell: _Cell | None
    job_running = True


class _Cell:
    """The state of one task.

    Written from any thread: ``mailbox`` (append), ``scheduled``, ``alive``
    and ``asks``; ``watchers`` under the IO system's lock. Everything else
    is read and written only on the worker's hub.
    """

    __slots__ = (
        "alive",
        "asks",
        "children",
        "cls",
        "current",
        "error",
        "finalizer",
        "greenlets",
        "handled",
        "handlers",
        "io",
        "mailbox",
        "name",
        "parent",
        "proxy",
        "reason",
        "runner",
        "scheduled",
        "stash",
        "state",
        "task",
        "timers",
        "unbound",
        "watchers",
        "watching",
        "worker",
    )

    def __init__(
        self, cls: type[Task], worker: Worker, name: str | None = None
    ) -> None:
        self.cls = cls
        self.worker = worker
        self.io = worker.io
        self.name = name
        self.proxy = ProxyActor(self)
        self.task: Task | None = None
        self.mailbox: deque[tuple[Any, ProxyActor | None]] = deque()
        self.scheduled = False
        self.alive = True
        self.state = PENDING
        self.greenlets: set[_TaskGreenlet] = set()
        self.runner: _TaskGreenlet | None = None
        self.handlers: list[Callable[[Any], Any]] = []
        self.handled = 0
        self.asks: set[_ReplyHandle] = set()
        self.reason: str | None = None
        self.error: BaseException | None = None
        self.unbound = OneShot()
        self.finalizer: _TaskGreenlet | None = None
        self.current: tuple[Any, ProxyActor | None] | None = None
        # Rarely used; created on first use to keep idle tasks small.
        self.parent: _Cell | None = None
        self.children: set[_Cell] | None = None
        self.watchers: list[Watcher] | None = []
        self.watching: set[_Cell] | None = None
        self.timers: dict[Any, Any] | None = None
        self.stash: list[tuple[Any, ProxyActor | None]] | None = None

    @property
    def reporting_failure(self) -> bool:
        """True while fail() reports the task's first failure: it alone
        unbinds the task then (see fail)."""
        return self.state < UNBINDING and self.error is not None

    def describe(self) -> str:
        named = f" {self.name!r}" if self.name is not None else ""
        return (
            f"{self.cls.__qualname__}{named} id={id(self):#x} "
            f"on {self.worker.name} ({_STATE_NAMES[self.state]})"
        )

    # -- any thread -------------------------------------------------------

    def mark_dead(self) -> None:
        """Stop the proxy and fail every ask still waiting on it."""
        self.alive = False
        asks = self.asks
        while asks:
            try:
                reply = asks.pop()
            except KeyError:  # emptied by another thread meanwhile
                break
            reply._fail(self.stopped_error())

    def stopped_error(self) -> ProxyStopped:
        """The error for an ask that this stopped task will never answer."""
        why = f": {self.reason}" if self.reason else ""
        error = ProxyStopped(f"{self.proxy!r} stopped{why}")
        error.__cause__ = self.error  # the failure that ended it, if any
        return error

    def request_stop(self, reason: str = "stopped") -> None:
        if not self.alive and self.state != PENDING:
            return
        self.mark_dead()
        self.worker._inbox.call_soon(self.stop_on_hub, reason)

    def would_deadlock(self, current: Any) -> bool:
        # The runner is the only greenlet that handles messages, and until
        # the task is bound its binding greenlet holds them back.
        return current is self.runner or self.state < BOUND

    def drain_dead(self) -> None:
        """Turn every queued message into a dead letter (never blocks)."""
        mailbox = self.mailbox
        dead_letter = self.io._dead_letter
        proxy = self.proxy
        while True:
            while mailbox:
                message, sender = mailbox.popleft()
                dead_letter(proxy, message, sender)
            self.scheduled = False
            if not mailbox:
                return

    def add_watcher(
        self, watcher: _Cell | None, callback: Callable[[Terminated], Any]
    ) -> None:
        """Call ``callback(Terminated)`` once this task has ended; any thread.

        Called at once (in the calling thread) if it has ended already.
        """
        with self.io._lock:
            watchers = self.watchers
            if watchers is not None:
                watchers.append((watcher, callback))
                return
        callback(self.terminated())

    def remove_watcher(self, watcher: _Cell) -> None:
        with self.io._lock:
            if self.watchers is not None:
                self.watchers = [w for w in self.watchers if w[0] is not watcher]

    def terminated(self) -> Terminated:
        return Terminated(self.proxy, self.reason or "stopped", self.error)

    # -- hub only ---------------------------------------------------------

    def new_greenlet(self, fn: Callable[..., Any]) -> _TaskGreenlet:
        g = _TaskGreenlet(fn, parent=self.worker.hub)
        g.geventio_cell = self
        return g

    def spawn(self, fn: Callable[..., Any], *args: Any) -> _TaskGreenlet:
        """Start ``fn(*args)`` in a new greenlet of this cell, its own for
        good (the user may keep it: :meth:`~geventio.Task.spawn` returns
        it)."""
        g = self.new_greenlet(self._guard)
        self.greenlets.add(g)
        self._start(g, fn, args)
        return g

    def run_job(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` for this cell on a pooled greenlet."""
        g = self._job_greenlet()
        self.greenlets.add(g)
        self._start(g, (self, self._guard, (fn, args)))

    def _job_greenlet(self) -> _TaskGreenlet:
        worker = self.worker
        pool = worker._pool
        g = pool.pop() if pool else self.new_greenlet(worker._pooled_main)
        g.geventio_cell = self
        g.job_running = False  # until _pooled_main starts the job
        return g

    def _start(self, g: greenlet, *args: Any) -> None:
        if getcurrent() is self.worker.hub:
            g.switch(*args)
        else:
            # A greenlet switched into from another task greenlet would
            # return to the hub, not to its starter, when it blocks.
            self.worker.loop.run_callback(g.switch, *args)

    def _guard(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            if self.state < UNBINDING:
                fn(*args)
        except GreenletExit as exc:
            if self.state < UNBINDING:
                # Not the kill of an unbinding task (those come only once
                # it unbinds): raised by the task's own code, a failure.
                self.fail(exc, None)
        except BaseException as exc:
            self.fail(exc, None)
        finally:
            self.greenlets.discard(getcurrent())
            if self.state == UNBINDING and not self.greenlets:
                self._finalize_soon()

    def bind_and_run(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Construct, bind and run the task (in its first task greenlet)."""
        try:
            task = self.cls(*args, **kwargs)
        except GreenletExit:
            raise  # a kill, or the constructor's own: _guard tells which
        except BaseException as exc:
            log.error("constructing %s failed", self.describe(), exc_info=exc)
            self.unbind("failed", exc)
            return
        if task._cell is not self:
            error = TypeError(f"{self.cls!r}.__new__ did not call Task.__new__")
            self.unbind("failed", error)
            return
        self.handlers.append(task.receive)
        self.state = BINDING
        task._was_bound = True
        task.on_bind()
        if self.state != BINDING:
            return  # on_bind unbound it
        self.state = BOUND
        if wanted():
            self.io._service.publish(TaskBound(self.proxy, self.cls, self.worker))
        self.kick()
        task.run()

    def kick(self) -> None:
        """Start a mailbox runner if messages wait and none runs."""
        if self.runner is None and self.mailbox and self.state == BOUND:
            g = self._job_greenlet()
            self._start(g, self.mailbox_job(g))

    def mailbox_job(self, g: _TaskGreenlet) -> tuple[Any, ...]:
        """Make *g* this task's runner; return the job that runs the
        mailbox, for a pooled greenlet to run (Worker._pooled_main)."""
        # Recorded before it starts: started from the hub, it may run the
        # whole mailbox, and clear this, before the switch returns.
        self.runner = g
        self.greenlets.add(g)
        return (self, self._guard, (self._run_mailbox, ()))

    def on_ready(self) -> None:
        """The hub learned that messages arrived (hub greenlet)."""
        if self.state == BOUND:
            self.kick()
        elif self.state == UNBOUND:
            self.drain_dead()
        # PENDING/BINDING: bind_and_run kicks once bound.
        # UNBINDING: the finalizer drains the mailbox.

    def _run_mailbox(self) -> None:
        # The hottest loop in geventio: one pass per message, with
        # everything it needs bound to a local first. The handled count is
        # kept on the cell as it goes, so that it is right even while a
        # receive waits (stats, wait_handled).
        mailbox = self.mailbox
        popleft = mailbox.popleft
        handlers = self.handlers
        task = self.task
        assert task is not None
        budget = _YIELD_EVERY
        try:
            while True:
                while mailbox and self.alive:
                    message, sender = self.current = popleft()
                    task.sender = sender
                    try:
                        if message.__class__ in SYSTEM_MESSAGES:
                            self._system_message(message, sender)
                        else:
                            handlers[-1](message)
                    except GreenletExit as exc:
                        if self.state >= UNBINDING:
                            raise  # the kill of an unbinding task
                        # Raised by the handler itself: a failure like any
                        # other, or the task would be left half-stopped.
                        self.fail(exc, sender)
                        return
                    except BaseException as exc:
                        self.fail(exc, sender)
                        return
                    self.handled += 1
                    budget -= 1
                    if not budget:
                        budget = _YIELD_EVERY
                        gevent.sleep(0)
                if not self.alive:
                    return
                # See Inbox._wake: clear the flag, then look once more.
                self.scheduled = False
                if not mailbox:
                    return
        finally:
            task.sender = None
            self.current = None
            self.runner = None

    def _system_message(self, message: Any, sender: ProxyActor | None) -> None:
        task = self.task
        assert task is not None
        if message.__class__ is StatusCheck:
            if sender is not None:
                sender.tell(task.status())
        elif message.__class__ is PoisonPill:
            # A stop like any other, only later: same reason, same steps.
            self.stop_on_hub("stopped")
        else:  # Terminated: only while still watching (unwatch filters it)
            watching = self.watching
            target = message.proxy._cell
            if watching is not None and target in watching:
                watching.discard(target)
                self.handlers[-1](message)

    def fail(self, exc: BaseException, sender: ProxyActor | None) -> None:
        """Report a task failure, answer the pending ask, then unbind."""
        # The first failure is claimed before anything that may switch
        # greenlets (logging does, after patch_all(), while another thread
        # holds a handler's lock): the proxy stops at once, and a stop or
        # a second failure arriving meanwhile leaves the reporting and the
        # unbinding to this greenlet, so the task ends as this failure.
        claimed = self.state < UNBINDING and self.error is None
        reply = sender if isinstance(sender, _ReplyHandle) else None
        if reply is not None:
            # Answered below with the failure, not by the stop below.
            self.asks.discard(reply)
        if claimed:
            self.error = exc
            self.reason = "failed"
            self.mark_dead()
        try:
            try:
                log.error("task %s failed", self.describe(), exc_info=exc)
                if wanted():
                    self.io._service.publish(TaskFailed(self.proxy, self.cls, exc))
            finally:
                if reply is not None:
                    _answer_failure(reply, exc, self)
            task = self.task
            if claimed and task is not None and self.state in (BINDING, BOUND):
                try:
                    task.on_failure(exc)
                except GreenletExit as hook_exc:
                    if self.state >= UNBINDING:
                        raise  # the kill of an unbinding task
                    self.hook_failed("on_failure", hook_exc)
                except BaseException as hook_exc:
                    self.hook_failed("on_failure", hook_exc)
        finally:
            if claimed:
                self.unbind("failed", exc)

    def hook_failed(
        self,
        hook: str,
        exc: BaseException,
        logger: logging.Logger = log,
        what: str | None = None,
    ) -> None:
        """Log and announce an exception from *hook* (described in the log
        as *what*), which ran while the task was already ending; any thread."""
        logger.error("%s of %s raised", what or hook, self.describe(), exc_info=exc)
        if wanted():
            self.io._service.publish(HookFailed(self.proxy, self.cls, hook, exc))

    def stop_on_hub(self, reason: str) -> None:
        """Run shutdown_request, then unbind (hub greenlet)."""
        self.mark_dead()
        if self.reporting_failure:
            return  # its greenlet unbinds next
        if self.state < UNBINDING:
            self.reason = reason
        if self.state == BOUND and self.task is not None:
            self.run_job(self._shutdown_request, reason)
        else:
            self.unbind(reason)

    def _shutdown_request(self, reason: str) -> None:
        assert self.task is not None
        self.task.shutdown_request()
        self.unbind(reason)

    def unbind(
        self, reason: str, exc: BaseException | None = None, *, cut_short: bool = False
    ) -> None:
        """Begin unbinding: kill the task's greenlets, then finalize.

        While a failure is being reported (see :meth:`fail`), only the
        reporting greenlet's own call, or *cut_short* (a timed shutdown
        out of time), unbinds: any other waits for the report to end.
        """
        if self.state >= UNBINDING:
            return
        if exc is None and self.reporting_failure and not cut_short:
            return  # its greenlet unbinds next
        self.state = UNBINDING
        if self.reason is None or exc is not None:
            # A stop names its reason before shutdown_request unbinds.
            self.reason = reason
        if exc is not None:
            self.error = exc
        self.mark_dead()
        if self.timers:
            for timer in self.timers.values():
                timer.close()
            self.timers.clear()
        # The calling greenlet too, if it is the task's: the callback runs
        # only once it has switched to the hub, so it carries on until it
        # returns (then _kill finds its job over) or next waits.
        for g in list(self.greenlets):
            self.worker.loop.run_callback(_kill, g, self)
        if not self.greenlets:
            self._finalize_soon()

    def _finalize_soon(self) -> None:
        # Not counted in self.greenlets: nothing may kill the finalizer.
        g = self.finalizer = self._job_greenlet()
        self.worker.loop.run_callback(g.switch, (self, self._finalize, ()))

    def _finalize(self) -> None:
        try:
            self._stop_children()
            task = self.task
            if task is not None and task._was_bound:
                try:
                    task.on_unbind()
                except GreenletExit:
                    raise
                except BaseException as exc:
                    self.hook_failed("on_unbind", exc)
        finally:
            self.finalizer = None
            self.state = UNBOUND
            log.debug("unbound %s: %s", self.describe(), self.reason)
            self.worker._cell_finished(self)
            self.io._forget_name(self)
            self.drain_dead()
            if self.stash:
                for message, sender in self.stash:
                    self.io._dead_letter(self.proxy, message, sender)
                self.stash.clear()
            self._stop_watching()
            if self.parent is not None and self.parent.children:
                # Same worker as the parent, so this runs on its hub too.
                self.parent.children.discard(self)
            self.unbound.set(self.reason)
            self._tell_watchers()
            if wanted():
                self.io._service.publish(
                    TaskUnbound(self.proxy, self.cls, self.reason, self.error)
                )

    def _stop_children(self) -> None:
        children = self.children
        if not children:
            return
        for child in list(children):
            child.remove_watcher(self)
            child.request_stop("parent unbound")
        for child in list(children):
            child.unbound.wait()
        children.clear()

    def _stop_watching(self) -> None:
        if self.watching:
            for target in self.watching:
                target.remove_watcher(self)
            self.watching.clear()

    def _tell_watchers(self) -> None:
        with self.io._lock:
            watchers, self.watchers = self.watchers, None
        if not watchers:
            return
        terminated = self.terminated()
        for _, callback in watchers:
            try:
                callback(terminated)
            except Exception:
                log.exception("a watcher of %s raised", self.describe())


def _answer_failure(reply: _ReplyHandle, exc: BaseException, cell: _Cell) -> None:
    """Fail the ask behind *reply* with *exc*, as an asker can take it."""
    if isinstance(exc, Exception):
        reply._fail(exc)
    else:
        # GreenletExit, SystemExit and the like would do the asker's
        # greenlet or thread harm: it gets an ordinary error instead.
        answer = GeventIOError(f"{cell.describe()} raised {exc!r}")
        answer.__cause__ = exc
        reply._fail(answer)


def _kill(g: _TaskGreenlet, cell: _Cell) -> None:
    """Raise GreenletExit in *g* if it still runs code of *cell* (a hub
    callback). A job not started yet sees the cell unbinding when it starts
    and returns at once; a pooled greenlet may have moved on to other work."""
    if g and not g.dead and g.job_running and g.geventio_cell is cell:
        g.throw(GreenletExit)
