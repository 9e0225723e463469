"""Task, the base class of user tasks, and _Cell, the state it shares with
its proxy.

Everything a task does runs in *task greenlets* on its worker's hub: one
that constructs, binds and runs it, one per burst of messages (the mailbox
runner, which exits when the mailbox is empty, so an idle task holds no
greenlet), and any the task spawns. Unbinding kills them all, then runs
``on_unbind`` once, in a greenlet of its own.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gevent
from greenlet import GreenletExit, getcurrent, greenlet
from zope.interface import implementer

from . import _native
from ._mailbox import OneShot
from ._proxy import ProxyActor, _ReplyHandle
from .errors import GeventIOError, ProxyStopped
from .events import TaskBound, TaskFailed, TaskUnbound, wanted
from .interfaces import ITask

if TYPE_CHECKING:
    from ._iosystem import IOSystem
    from ._worker import Worker

__all__ = ["StatusCheck", "Task"]

log = logging.getLogger(__name__)

# Cell states. A task is "bound" from BINDING on: on_bind runs while
# BINDING, and messages are handled only once BOUND.
PENDING, BINDING, BOUND, UNBINDING, UNBOUND = range(5)
_STATE_NAMES = ("pending", "binding", "bound", "unbinding", "unbound")

# A mailbox runner yields to the hub after this many messages, so a long
# burst to one task does not starve the worker's other tasks, timers and I/O.
_YIELD_EVERY = 64


class StatusCheck:
    """Ask a task for its :meth:`Task.status`, answered from its own loop.

    ``proxy.ask(StatusCheck(), timeout=...)`` returns the status, queued in
    order with the task's other messages; the task never sees it in
    :meth:`Task.receive`. A loop that is blocked, or a handler that hangs,
    therefore fails the check by timing out.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "StatusCheck()"


class _TaskGreenlet(greenlet):  # type: ignore[misc]
    """A greenlet running code of one task; ``geventio_cell`` names it."""

    geventio_cell: _Cell


class _Cell:
    """The state of one task, shared by the task and its proxy.

    Fields written from any thread: ``mailbox`` (append), ``scheduled``,
    ``alive`` and ``asks``. Everything else is read and written only on the
    worker's hub.
    """

    __slots__ = (
        "alive",
        "asks",
        "cls",
        "error",
        "greenlets",
        "handled",
        "handlers",
        "io",
        "mailbox",
        "proxy",
        "reason",
        "runner",
        "scheduled",
        "state",
        "task",
        "unbound",
        "worker",
    )

    def __init__(self, cls: type[Task], worker: Worker) -> None:
        self.cls = cls
        self.worker = worker
        self.io = worker.io
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

    def describe(self) -> str:
        return (
            f"{self.cls.__qualname__} id={id(self):#x} "
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
            reply._fail(ProxyStopped(f"{self.proxy!r} stopped"))

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

    # -- hub only ---------------------------------------------------------

    def spawn(self, fn: Callable[..., Any], *args: Any) -> _TaskGreenlet:
        """Start ``fn(*args)`` in a new task greenlet of this cell."""
        g = _TaskGreenlet(self._guard, parent=self.worker.hub)
        g.geventio_cell = self
        self.greenlets.add(g)
        self._start(g, fn, args)
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
        except GreenletExit:
            pass
        except BaseException as exc:
            self.fail(exc, None)
        finally:
            self.greenlets.discard(getcurrent())  # type: ignore[arg-type]
            if self.state == UNBINDING and not self.greenlets:
                self._finalize_soon()

    def bind_and_run(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Construct, bind and run the task (in its first task greenlet)."""
        try:
            task = self.cls(*args, **kwargs)
        except GreenletExit:
            raise
        except BaseException as exc:
            log.error("constructing %s failed", self.describe(), exc_info=exc)
            self.unbind("failed", exc)
            return
        if task._cell is not self:
            self.unbind("failed", TypeError(f"{self.cls!r} did not build a task"))
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
            g = _TaskGreenlet(self._guard, parent=self.worker.hub)
            g.geventio_cell = self
            self.greenlets.add(g)
            self.runner = g
            self._start(g, self._run_mailbox, ())

    def on_ready(self) -> None:
        """The hub learned that messages arrived (hub greenlet)."""
        if self.state == BOUND:
            self.kick()
        elif self.state == UNBOUND:
            self.drain_dead()
        # PENDING/BINDING: bind_and_run kicks once bound.
        # UNBINDING: the finalizer drains the mailbox.

    def _run_mailbox(self) -> None:
        mailbox = self.mailbox
        task = self.task
        assert task is not None
        budget = _YIELD_EVERY
        try:
            while True:
                while mailbox and self.alive:
                    message, sender = mailbox.popleft()
                    task.sender = sender
                    try:
                        if message.__class__ is StatusCheck:
                            if sender is not None:
                                sender.tell(task.status())
                        else:
                            self.handlers[-1](message)
                    except GreenletExit:
                        raise
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
            self.runner = None

    def fail(self, exc: BaseException, sender: ProxyActor | None) -> None:
        """Report a task failure, answer the pending ask, then unbind."""
        log.error("task %s failed", self.describe(), exc_info=exc)
        if wanted():
            self.io._service.publish(TaskFailed(self.proxy, self.cls, exc))
        if isinstance(sender, _ReplyHandle):
            sender._fail(exc)
        task = self.task
        if task is not None and self.state in (BINDING, BOUND):
            try:
                task.on_failure(exc)
            except GreenletExit:
                raise
            except BaseException:
                log.exception("on_failure of %s raised", self.describe())
        self.unbind("failed", exc)

    def stop_on_hub(self, reason: str) -> None:
        """Run shutdown_request, then unbind (hub greenlet)."""
        self.mark_dead()
        if self.state == BOUND and self.task is not None:
            self.spawn(self._shutdown_request, reason)
        else:
            self.unbind(reason)

    def _shutdown_request(self, reason: str) -> None:
        assert self.task is not None
        self.task.shutdown_request()
        self.unbind(reason)

    def unbind(self, reason: str, exc: BaseException | None = None) -> None:
        """Begin unbinding: kill the task's greenlets, then finalize."""
        if self.state >= UNBINDING:
            return
        self.state = UNBINDING
        self.reason = reason
        self.error = exc
        self.mark_dead()
        current = getcurrent()
        for g in list(self.greenlets):
            if g is not current:
                self.worker.loop.run_callback(_kill, g)
        if not self.greenlets:
            self._finalize_soon()

    def _finalize_soon(self) -> None:
        g = _TaskGreenlet(self._finalize, parent=self.worker.hub)
        g.geventio_cell = self
        self.worker.loop.run_callback(g.switch)

    def _finalize(self) -> None:
        task = self.task
        try:
            if task is not None and task._was_bound:
                try:
                    task.on_unbind()
                except GreenletExit:
                    raise
                except BaseException:
                    log.exception("on_unbind of %s raised", self.describe())
        finally:
            self.state = UNBOUND
            log.debug("unbound %s: %s", self.describe(), self.reason)
            self.worker._cell_finished(self)
            self.drain_dead()
            self.unbound.set(self.reason)
            if wanted():
                self.io._service.publish(
                    TaskUnbound(self.proxy, self.cls, self.reason, self.error)
                )


def _kill(g: greenlet) -> None:
    """Raise GreenletExit in *g* (hub callback). Unstarted ones see the
    cell unbinding when they start and return at once."""
    if g and not g.dead:
        g.throw(GreenletExit)


def _building_cell(cls: type) -> _Cell | None:
    cell = getattr(getcurrent(), "geventio_cell", None)
    if cell is not None and cell.cls is cls and cell.task is None:
        return cell  # type: ignore[no-any-return]
    return None


@implementer(ITask)
class Task:
    """Base class of user tasks: see :class:`~geventio.interfaces.ITask`.

    Subclass it, override :meth:`run` and/or :meth:`receive`, and start it
    with :meth:`start`. A subclass constructor must call
    ``super().__init__()``; the framework attaches the worker, the proxy
    and the IO system before ``__init__`` runs, so they are usable there.

    .. versionadded:: 0.1
    """

    #: The proxy of whoever sent the message being handled (a reply handle
    #: for an ask), or None. Meaningful inside :meth:`receive`.
    sender: ProxyActor | None = None

    _cell: _Cell | None
    _was_bound = False

    def __new__(cls, *args: Any, **kwargs: Any) -> Task:
        self = super().__new__(cls)
        cell = _building_cell(cls)
        self._cell = cell
        if cell is not None:
            cell.task = self
        return self

    def __init__(self) -> None:
        pass

    # -- starting ---------------------------------------------------------

    @classmethod
    def start(cls, target: IOSystem | Worker, *args: Any, **kwargs: Any) -> ProxyActor:
        """Start ``cls(*args, **kwargs)`` on *target* and return its proxy.

        Callable from any thread or hub; never blocks. The task is built,
        bound and run on the worker's own thread; messages told to the proxy
        meanwhile are kept and handled once it is bound.

        Args:
            target: an :class:`IOSystem` (a worker is picked round-robin)
                or one of its :class:`Worker` objects.

        Raises:
            TypeError: *target* is neither an IOSystem nor a Worker, or
                *cls* is not a Task subclass.
            IOSystemShutdown: the IO system is shut down.
        """
        from ._iosystem import IOSystem
        from ._worker import Worker

        if not (isinstance(cls, type) and issubclass(cls, Task)):
            raise TypeError(f"start needs a Task subclass, got {cls!r}")
        if isinstance(target, IOSystem):
            worker = target._next_worker()
        elif isinstance(target, Worker):
            worker = target
        else:
            raise TypeError(f"target must be an IOSystem or a Worker, got {target!r}")
        return worker._start_task(cls, args, kwargs)

    # -- the task's own view ----------------------------------------------

    def _bound_cell(self) -> _Cell:
        cell = self._cell
        if cell is None:
            raise GeventIOError(
                f"{type(self).__name__} was not started with {type(self).__name__}"
                ".start(), so it has no worker, proxy or IO system"
            )
        return cell

    @property
    def proxy(self) -> ProxyActor:
        """This task's own :class:`ProxyActor`."""
        return self._bound_cell().proxy

    @property
    def worker(self) -> Worker:
        """The :class:`Worker` this task is bound to."""
        return self._bound_cell().worker

    @property
    def io(self) -> IOSystem:
        """The :class:`IOSystem` of this task's worker."""
        return self._bound_cell().io

    @property
    def is_bound(self) -> bool:
        """True from ``on_bind`` until unbinding begins."""
        cell = self._cell
        return cell is not None and cell.state in (BINDING, BOUND)

    def _check_own_hub(self, what: str) -> _Cell:
        cell = self._bound_cell()
        if _native.get_ident() != cell.worker.ident:
            raise GeventIOError(
                f"{what} may only be called on the task's own worker hub "
                f"({cell.worker.name})"
            )
        return cell

    def become(self, handler: Callable[[Any], Any]) -> None:
        """Route later messages to ``handler(message)``, not :meth:`receive`.

        Only on the task's own hub; never blocks. Handlers stack:
        :meth:`unbecome` returns to the previous one.

        Raises:
            TypeError: *handler* is not callable.
        """
        if not callable(handler):
            raise TypeError(f"become needs a callable handler, got {handler!r}")
        self._check_own_hub("become()").handlers.append(handler)

    def unbecome(self) -> None:
        """Return to the handler in use before the last :meth:`become`.

        Only on the task's own hub; never blocks; does nothing when no
        :meth:`become` is in force.
        """
        handlers = self._check_own_hub("unbecome()").handlers
        if len(handlers) > 1:
            handlers.pop()

    def unbind(self) -> None:
        """Unbind this task: it stops, and ``on_unbind`` runs once.

        Only on the task's own hub; never blocks. Every greenlet of the task
        other than the caller is killed with GreenletExit at once; the
        calling greenlet carries on until it returns or next blocks (then
        it is killed too). Messages not yet handled become dead letters.
        """
        self._check_own_hub("unbind()").unbind("unbound")

    def spawn(self, fn: Callable[..., Any], *args: Any) -> greenlet:
        """Run ``fn(*args)`` in a new greenlet that belongs to this task.

        Only on the task's own hub; never blocks. The greenlet is killed
        when the task unbinds, an exception escaping it is a failure of the
        task, and ``tell`` inside it defaults ``sender`` to this task.

        Raises:
            GeventIOError: the task is not bound.
        """
        cell = self._check_own_hub("spawn()")
        if cell.state >= UNBINDING:
            raise GeventIOError(f"{cell.describe()} is not bound")
        return cell.spawn(fn, *args)

    # -- hooks --------------------------------------------------------------

    def on_bind(self) -> None:
        """Hook: the task is bound; runs once, before :meth:`run`.

        Runs in the task's first greenlet on its worker's hub; messages wait
        until it returns. An exception is a failure of the task.
        """

    def run(self) -> None:
        """Hook: the task's body; called once, right after :meth:`on_bind`.

        Runs in its own greenlet on the worker's hub, beside message
        handling; it may block cooperatively (gevent sockets, sleeps). When
        it returns the task stays bound and keeps handling messages. It is
        killed with GreenletExit if the task unbinds first; any other
        exception is a failure of the task.
        """

    def receive(self, message: Any) -> None:
        """Hook: handle one message; one at a time, in arrival order.

        Runs in a greenlet on the worker's hub and may block cooperatively.
        :attr:`sender` is the proxy to reply to. An exception is a failure
        of the task (and the answer to a pending ask). The default counts
        the message as a dead letter: a task that expects none need not
        override it.
        """
        cell = self._bound_cell()
        log.warning("%s has no receive(); dropped %r", cell.describe(), message)
        cell.io._dead_letter(cell.proxy, message, self.sender)

    def on_failure(self, exc: BaseException) -> None:
        """Hook: *exc* escaped :meth:`run`, :meth:`receive` or another hook.

        Called once, in the failing greenlet, after the failure was logged
        and before the task unbinds. An exception here is logged and the
        unbinding goes on.
        """

    def shutdown_request(self) -> None:
        """Hook: the proxy was stopped or the IO system is shutting down.

        Runs in a greenlet of the task on its hub, ahead of queued
        messages (which become dead letters). The default unbinds; an
        override may say goodbye first (it may block cooperatively), and
        the task is unbound when it returns in any case.
        """
        self.unbind()

    def on_unbind(self) -> None:
        """Hook: the task is unbound; runs exactly once per bound task.

        Runs in a greenlet of its own on the worker's hub after every other
        greenlet of the task has ended, whatever ended it. An exception here
        is logged and the unbinding completes.
        """

    def status(self) -> Any:
        """Hook: the answer to a :class:`StatusCheck`, from the task's loop.

        The default is a dict: ``alive`` (True) and ``handled`` (messages
        handled so far).
        """
        return {"alive": True, "handled": self._bound_cell().handled}

    def __repr__(self) -> str:
        cell = self._cell
        where = cell.describe() if cell is not None else "not started"
        return f"<{type(self).__qualname__} {where}>"
