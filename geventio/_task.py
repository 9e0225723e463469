"""Task: the base class of user tasks, and the API a task has of itself."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Hashable
from numbers import Real
from typing import TYPE_CHECKING, Any

from greenlet import getcurrent, greenlet
from zope.interface import implementer

from . import _native
from ._cell import BINDING, BOUND, UNBINDING, _Cell
from ._proxy import ProxyActor
from .errors import GeventIOError
from .interfaces import ITask

if TYPE_CHECKING:
    from ._iosystem import IOSystem
    from ._worker import Worker

__all__ = ["Task"]

log = logging.getLogger("geventio.task")


def _check_delay(what: str, value: object, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{what} must be a number of seconds, got {value!r}")
    seconds = float(value)
    # NaN fails every comparison, so it is refused here too: a loop timer
    # given it would never fire, or abort the process (libev asserts).
    if not (seconds > 0 if positive else seconds >= 0) or seconds == math.inf:
        rule = "positive" if positive else "non-negative"
        raise ValueError(f"{what} must be a {rule}, finite number, got {value!r}")
    return seconds


def _check_callable(what: str, value: object) -> None:
    if not callable(value):
        raise TypeError(f"{what} must be callable, got {value!r}")


def _worker_of(cls: type, target: object) -> Worker:
    from ._iosystem import IOSystem
    from ._worker import Worker

    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise TypeError(f"start needs a Task subclass, got {cls!r}")
    if isinstance(target, IOSystem):
        return target._next_worker()
    if isinstance(target, Worker):
        return target
    raise TypeError(f"target must be an IOSystem or a Worker, got {target!r}")


def _task_cell(proxy: object) -> _Cell:
    from ._proxy import _ReplyHandle

    if (
        not isinstance(proxy, ProxyActor)
        or isinstance(proxy, _ReplyHandle)
        or getattr(proxy, "_cell", None) is None  # a probe, say
    ):
        raise TypeError(f"expected a task's ProxyActor, got {proxy!r}")
    return proxy._cell


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
    def start(
        cls, target: IOSystem | Worker, /, *args: Any, **kwargs: Any
    ) -> ProxyActor:
        """Start ``cls(*args, **kwargs)`` on *target* and return its proxy.

        Callable from any thread or hub; never blocks. The task is built,
        bound and run on the worker's own thread; messages told to the proxy
        meanwhile are kept and handled once it is bound.

        Args:
            target: an :class:`~geventio.IOSystem` (a worker is picked
                round-robin) or one of its :class:`~geventio.Worker` objects.

        Raises:
            TypeError: *target* is neither an IOSystem nor a Worker, or
                *cls* is not a Task subclass.
            IOSystemShutdown: the IO system is shut down.
        """
        return _worker_of(cls, target)._start_task(cls, args, kwargs)

    @classmethod
    def start_named(
        cls, name: str, target: IOSystem | Worker, /, *args: Any, **kwargs: Any
    ) -> ProxyActor:
        """Like :meth:`start`, registering the task as *name* in its system.

        ``io.find(name)`` returns the proxy until the task is stopped,
        which frees the name. *name* and *target* are positional-only, so
        they never collide with the constructor's own arguments (a task may
        take a ``name`` of its own). Any thread or hub; never blocks.

        Raises:
            TypeError: *name* is not a str (and as :meth:`start`).
            ValueError: *name* is empty, or a live task of the same IO
                system already has it.
            IOSystemShutdown: the IO system is shut down.
        """
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {name!r}")
        if not name:
            raise ValueError("name must not be empty")
        return _worker_of(cls, target)._start_task(cls, args, kwargs, name=name)

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
        """This task's own :class:`~geventio.ProxyActor`."""
        return self._bound_cell().proxy

    @property
    def worker(self) -> Worker:
        """The :class:`~geventio.Worker` this task is bound to."""
        return self._bound_cell().worker

    @property
    def io(self) -> IOSystem:
        """The :class:`~geventio.IOSystem` of this task's worker."""
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
            TypeError: *fn* is not callable.
            GeventIOError: the task is not bound.
        """
        _check_callable("fn", fn)
        cell = self._check_own_hub("spawn()")
        if cell.state >= UNBINDING:
            raise GeventIOError(f"{cell.describe()} is not bound")
        return cell.spawn(fn, *args)

    def start_child(self, cls: type[Task], /, *args: Any, **kwargs: Any) -> ProxyActor:
        """Start ``cls(*args, **kwargs)`` as a child of this task.

        Only on the task's own hub; never blocks. The child is bound to the
        same worker. This task watches it: a child that ends on its own
        (fails, unbinds, is stopped) is reported with a
        :class:`~geventio.Terminated` message, so the parent decides what
        to do. When this task unbinds, its children are stopped, and have
        finished unbinding, before its own ``on_unbind`` runs.

        Raises:
            GeventIOError: this task is not bound.
            IOSystemShutdown: the IO system is shutting down.
        """
        cell = self._check_own_hub("start_child()")
        if cell.state >= UNBINDING:
            raise GeventIOError(f"{cell.describe()} is not bound")
        proxy = _worker_of(cls, cell.worker)._start_task(cls, args, kwargs)
        child = proxy._cell
        child.parent = cell
        if cell.children is None:
            cell.children = set()
        cell.children.add(child)
        self.watch(proxy)
        return proxy

    @property
    def children(self) -> list[ProxyActor]:
        """The proxies of this task's children that have not ended yet."""
        children = self._bound_cell().children
        return [c.proxy for c in children or () if c.state < UNBINDING]

    def watch(self, proxy: ProxyActor) -> None:
        """Be told a :class:`~geventio.Terminated` when *proxy*'s task ends.

        Only on the task's own hub; never blocks. The message arrives
        exactly once, in this task's mailbox, even for a task on another
        worker or IO system; watching one that has already ended delivers
        it at once. Watching twice is the same as once.

        Raises:
            TypeError: *proxy* is not a task's ProxyActor.
        """
        cell = self._check_own_hub("watch()")
        target = _task_cell(proxy)
        if cell.watching is None:
            cell.watching = set()
        if target in cell.watching:
            return
        cell.watching.add(target)
        own = cell.proxy
        target.add_watcher(cell, lambda terminated: own.tell(terminated, None))

    def unwatch(self, proxy: ProxyActor) -> None:
        """Stop watching *proxy*; a Terminated not yet handled is dropped.

        Only on the task's own hub; never blocks.
        """
        cell = self._check_own_hub("unwatch()")
        target = _task_cell(proxy)
        if cell.watching is not None and target in cell.watching:
            cell.watching.discard(target)
            target.remove_watcher(cell)

    def schedule_once(
        self, delay: float, message: Any, key: Hashable = None
    ) -> Hashable:
        """Tell *message* to this task after *delay* seconds.

        Only on the task's own hub; never blocks. The timer is a timer of
        the hub's own loop (no thread); scheduling again under the same
        *key* replaces the earlier timer; every timer is cancelled when the
        task unbinds.

        Returns:
            the key, for :meth:`cancel` (a fresh one if *key* was None).

        Raises:
            TypeError, ValueError: *delay* is not a non-negative number.
        """
        delay = _check_delay("delay", delay)
        return self._schedule(delay, None, message, key)

    def schedule_every(
        self, interval: float, message: Any, key: Hashable = None
    ) -> Hashable:
        """Tell *message* to this task every *interval* seconds.

        The first one comes after *interval*. Otherwise as
        :meth:`schedule_once`.

        Raises:
            TypeError, ValueError: *interval* is not a positive number.
        """
        interval = _check_delay("interval", interval, positive=True)
        return self._schedule(interval, interval, message, key)

    def _schedule(
        self, after: float, repeat: float | None, message: Any, key: Hashable
    ) -> Hashable:
        cell = self._check_own_hub("scheduling a timer")
        if cell.state >= UNBINDING:
            raise GeventIOError(f"{cell.describe()} is not bound")
        if key is None:
            key = object()
        self.cancel(key)
        timer = cell.worker.loop.timer(after, repeat or 0.0, ref=False)
        proxy = cell.proxy
        timers = cell.timers if cell.timers is not None else {}
        cell.timers = timers

        def fire() -> None:
            if repeat is None:
                timers.pop(key, None)
                timer.close()
            proxy.tell(message, None)

        timer.start(fire)
        timers[key] = timer
        return key

    def cancel(self, key: Hashable) -> bool:
        """Cancel the timer scheduled under *key*; True if there was one.

        Only on the task's own hub; never blocks. A message already told by
        the timer stays in the mailbox.
        """
        timers = self._check_own_hub("cancel()").timers
        timer = timers.pop(key, None) if timers else None
        if timer is None:
            return False
        timer.close()
        return True

    def forward(self, message: Any, to: ProxyActor) -> None:
        """Tell *message* to *to* with the sender of the current message.

        Replies then go straight to the original sender (an ask included).
        Callable wherever :attr:`sender` is meaningful; never blocks.

        Raises:
            TypeError: *to* is not a ProxyActor.
        """
        if not isinstance(to, ProxyActor):
            raise TypeError(f"to must be a ProxyActor, got {to!r}")
        to.tell(message, self.sender)

    def stash(self) -> None:
        """Set the message being handled aside until :meth:`unstash_all`.

        Only inside the task's own message handling; never blocks. Stashed
        messages keep their order and sender; whatever is still stashed
        when the task unbinds becomes dead letters.

        Raises:
            GeventIOError: no message is being handled.
        """
        cell = self._check_own_hub("stash()")
        if cell.current is None or getcurrent() is not cell.runner:
            raise GeventIOError("stash() is only meaningful while handling a message")
        if cell.stash is None:
            cell.stash = []
        cell.stash.append(cell.current)

    def unstash_all(self) -> None:
        """Put every stashed message back, ahead of those still queued.

        Only on the task's own hub; never blocks. They are handled again,
        in the order they were stashed.
        """
        cell = self._check_own_hub("unstash_all()")
        if not cell.stash:
            return
        cell.mailbox.extendleft(reversed(cell.stash))
        cell.stash.clear()
        cell.kick()

    def run_blocking(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on the worker hub's native thread pool.

        Only on the task's own hub. Blocks only the calling greenlet until
        *fn* returns, so the rest of the worker keeps running; returns what
        *fn* returned or raises what it raised. Each hub has its own pool
        (gevent's ``hub.threadpool``); one shared between hubs would be
        unsafe.

        Raises:
            TypeError: *fn* is not callable.
        """
        _check_callable("fn", fn)
        cell = self._check_own_hub("run_blocking()")
        # Known shortcoming: a shutdown waits for *fn* to return (a pool
        # thread cannot be killed); only a timed shutdown stops waiting.
        return cell.worker.hub.threadpool.apply(fn, args)

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

        Called once, for the task's first failure, in the failing
        greenlet, after the failure was logged and before the task unbinds.
        The proxy is already stopped; a stop or an untimed shutdown waits
        for this hook to return. An exception here is logged (and announced
        as a :class:`~geventio.events.HookFailed` event) and the unbinding
        goes on.
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
        """Hook: the answer to a :class:`~geventio.StatusCheck`.

        The default is a dict: ``alive`` (True) and ``handled`` (messages
        handled so far).
        """
        return {"alive": True, "handled": self._bound_cell().handled}

    def __repr__(self) -> str:
        cell = self._cell
        where = cell.describe() if cell is not None else "not started"
        return f"<{type(self).__qualname__} {where}>"
