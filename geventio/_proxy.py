"""ProxyActor: the thread-safe handle through which anyone talks to a task."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import CancelledError
from numbers import Real
from typing import TYPE_CHECKING, Any

from greenlet import getcurrent
from zope.interface import implementer

from . import _native
from ._mailbox import OneShot
from .errors import AskTimeout, GeventIOError, ProxyStopped, WouldDeadlock
from .interfaces import IProxyActor

# The logger of callbacks run on the service thread (see _monitor).
_service_log = logging.getLogger("geventio.service")

if TYPE_CHECKING:
    from ._cell import _Cell
    from ._messages import Terminated

__all__ = ["AskFuture", "ProxyActor"]


# Longer waits than this are waits for ever (the native lock's limit).
_TIMEOUT_MAX = float(_native.TIMEOUT_MAX)


def _check_timeout(timeout: object) -> float | None:
    """Validate a timeout in the caller's thread, before anything is sent.

    None and infinity wait for ever, as does anything past what a native
    lock can wait; NaN, negatives and non-numbers are refused.
    """
    if timeout is None:
        return None
    # The common cases first, without the ABC check below.
    plain = isinstance(timeout, (int, float)) and not isinstance(timeout, bool)
    if plain and 0 <= timeout <= _TIMEOUT_MAX:  # type: ignore[operator]
        return float(timeout)  # type: ignore[arg-type]
    if isinstance(timeout, bool) or not isinstance(timeout, Real):
        raise TypeError(f"timeout must be a number of seconds or None, got {timeout!r}")
    value = float(timeout)
    if value != value:
        raise ValueError(f"timeout must be a number, got {timeout!r}")
    if value < 0:
        raise ValueError(f"timeout must not be negative, got {timeout!r}")
    return None if value > _TIMEOUT_MAX else value


def _current_proxy() -> ProxyActor | None:
    """The proxy of the task whose greenlet is running, if any."""
    cell = getattr(getcurrent(), "geventio_cell", None)
    return None if cell is None else cell.proxy


@implementer(IProxyActor)
class ProxyActor:
    """A thread-safe handle to one task.

    The contract is :class:`~geventio.interfaces.IProxyActor`.

    Returned by :meth:`~geventio.Task.start`; a task reaches its own as
    :attr:`~geventio.Task.proxy` and the sender of the message it handles as
    :attr:`~geventio.Task.sender`. Proxies compare by identity: each task
    has exactly one.

    .. versionadded:: 0.1
    """

    __slots__ = ("__weakref__", "_cell")

    def __init__(self, cell: _Cell) -> None:
        self._cell = cell

    def tell(self, message: Any, sender: ProxyActor | None = None) -> None:
        """Send *message* to the task; any thread or hub; never blocks.

        Args:
            message: any object; it is handed over by reference, not copied.
            sender: where replies go (:attr:`~geventio.Task.sender` on
                the other side). Inside a task it defaults to that task's
                own proxy.

        Raises:
            TypeError: *sender* is neither None nor a ProxyActor.

        A message told to a stopped proxy is a dead letter: counted in
        :attr:`~geventio.IOSystem.dead_letters`, logged at DEBUG, never raised.
        """
        if sender is None:
            cell = getattr(getcurrent(), "geventio_cell", None)
            if cell is not None:
                sender = cell.proxy
        elif not isinstance(sender, ProxyActor):
            raise TypeError(f"sender must be a ProxyActor or None, got {sender!r}")
        cell = self._cell
        if not cell.alive:
            cell.io._dead_letter(self, message, sender)
            return
        # Publish the message, then look at the flag: see Inbox._wake for
        # why this order never loses a wake-up.
        cell.mailbox.append((message, sender))
        if not cell.alive:
            # Stopped since the check above, from another thread: whatever
            # drains a stopped task's mailbox may have run already (for a
            # worker abandoned by a shutdown, nothing else ever will).
            cell.drain_dead()  # type: ignore[unreachable]  # (another thread)
            return
        if not cell.scheduled:
            cell.scheduled = True
            cell.worker._inbox.schedule(cell)

    def ask(self, message: Any, timeout: float | None = None) -> Any:
        """Send *message* and wait for the first reply told to its sender.

        Callable from any thread or hub. Blocks only the calling greenlet
        when the calling thread runs a gevent hub (any worker's included),
        and the calling OS thread otherwise, for at most *timeout* seconds
        (None waits for ever).

        Returns:
            the first message the task tells to
            :attr:`~geventio.Task.sender` while handling *message*.

        Raises:
            ProxyStopped: at once if the proxy is stopped, and promptly if it
                stops while the ask waits.
            AskTimeout: no reply within *timeout*.
            WouldDeadlock: a task asked its own proxy from inside its own
                message handling, or the caller is a hub greenlet.
            Exception: whatever the task raised while handling *message*.
        """
        if timeout is not None:
            timeout = _check_timeout(timeout)
        cell = self._cell
        if not cell.alive:
            raise cell.stopped_error()
        current = getcurrent()
        if getattr(current, "geventio_cell", None) is cell and cell.would_deadlock(
            current
        ):
            raise WouldDeadlock(
                f"{self!r} asked itself from inside its own message handling; "
                "the reply could never be handled"
            )
        reply = _ReplyHandle(cell)
        asks = cell.asks
        asks.add(reply)
        try:
            if not cell.alive:
                # Stopped after the first check: the stop may have failed
                # the pending asks before this one was registered.
                raise cell.stopped_error()
            return reply._slot.get(timeout, lambda: self.tell(message, reply))
        finally:
            asks.discard(reply)

    def ask_future(self, message: Any, timeout: float | None = None) -> AskFuture:
        """Send *message* and return a future of its reply.

        Callable from any thread or hub; never blocks. The
        :class:`~geventio.AskFuture` fails with :class:`~geventio.AskTimeout`
        if no reply came *timeout* seconds after this call, whether or not
        anything waits on it, and with the errors :meth:`ask` would raise
        otherwise.
        """
        timeout = _check_timeout(timeout)
        reply = _ReplyHandle(self._cell)
        future = AskFuture(reply, timeout)
        cell = self._cell
        if not cell.alive:
            reply._fail(cell.stopped_error())
            return future
        cell.asks.add(reply)
        # Stopped meanwhile: the stop may have failed the pending asks
        # before this one was registered (mypy cannot see another thread).
        if not cell.alive:
            reply._fail(cell.stopped_error())  # type: ignore[unreachable]
            return future
        self.tell(message, reply)
        if timeout is not None:
            # The ask expires on its own, even if nobody waits on it, so its
            # done-callbacks run and its reply handle is let go of.
            deadline = _native.monotonic() + timeout
            cell.worker._inbox.call_soon(_expire_at, reply, deadline)
        return future

    def stop(self, drain: bool = False) -> None:
        """Stop the task; any thread or hub; idempotent; never blocks.

        :attr:`is_alive` is False once this returns. The task's hub runs its
        :meth:`~geventio.Task.shutdown_request` ahead of any message still
        queued, then unbinds it; queued and later messages become dead
        letters.

        With ``drain=True`` it tells a :class:`~geventio.PoisonPill`
        instead: the messages queued before it are handled first, and the
        proxy stays alive until then.
        """
        if drain:
            from ._messages import PoisonPill

            if self._cell.alive:
                self.tell(PoisonPill(), None)
        else:
            self._cell.request_stop()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the task has completely unbound (``on_unbind`` done).

        Callable from any thread or hub except the task's own greenlets
        (which would wait for themselves). Blocks only the calling greenlet
        on a hub, the calling thread elsewhere, for at most *timeout*
        seconds.

        Returns:
            True once the task has unbound, False on timeout.
        """
        timeout = _check_timeout(timeout)
        if getattr(getcurrent(), "geventio_cell", None) is self._cell:
            raise WouldDeadlock(f"{self!r} cannot join itself")
        return self._cell.unbound.wait(timeout)

    def on_stopped(self, callback: Callable[[Terminated], Any]) -> None:
        """Call ``callback(terminated)`` once the task has ended.

        Callable from any thread or hub; never blocks. The callback runs on
        the IO system's service thread, never on a worker hub, with a
        :class:`~geventio.Terminated` saying why; at once (on that thread)
        if the task has already ended. An exception it raises is logged on
        ``geventio.service`` and announced as a
        :class:`~geventio.events.HookFailed` event.

        Raises:
            TypeError: *callback* is not callable.
        """
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {callback!r}")
        cell = self._cell

        def run(terminated: Terminated) -> None:
            try:
                callback(terminated)
            except BaseException as exc:
                # SystemExit included: it must not end the service thread.
                what = f"on_stopped callback {callback!r}"
                cell.hook_failed("on_stopped", exc, _service_log, what)

        service = cell.io._service
        cell.add_watcher(None, lambda t: service.call_soon(run, t))

    @property
    def is_alive(self) -> bool:
        """True until the proxy is stopped or its task unbinds."""
        return self._cell.alive

    def __repr__(self) -> str:
        return f"<ProxyActor {self._cell.describe()}>"


class _ReplyHandle(ProxyActor):
    """The sender of an ask: its first ``tell`` becomes the ask's answer.

    Any later reply is a dead letter. It belongs to the ask, not to a task,
    so it cannot be asked itself; stopping it fails the ask.
    """

    __slots__ = ("_slot",)

    def __init__(self, cell: _Cell) -> None:
        super().__init__(cell)
        self._slot = OneShot()

    def tell(self, message: Any, sender: ProxyActor | None = None) -> None:
        if self._slot._settle(message, None):
            self._cell.asks.discard(self)
        else:
            self._cell.io._dead_letter(self, message, sender)

    def ask(self, message: Any, timeout: float | None = None) -> Any:
        raise GeventIOError("a reply handle cannot be asked; tell it the answer")

    def stop(self, drain: bool = False) -> None:
        self._fail(ProxyStopped("the reply handle was stopped"))

    def _fail(self, exc: BaseException) -> None:
        if self._slot.fail(exc):
            self._cell.asks.discard(self)

    @property
    def is_alive(self) -> bool:
        return not self._slot.done

    def __repr__(self) -> str:
        state = "answered" if self._slot.done else "waiting"
        return f"<reply handle {state}, ask to {self._cell.describe()}>"


def _expire_at(reply: _ReplyHandle, deadline: float) -> None:
    """Fail *reply* with AskTimeout at *deadline* (on the target's hub)."""
    if reply._slot.done:
        return
    worker = reply._cell.worker
    timer = worker.loop.timer(max(0.0, deadline - _native.monotonic()), ref=False)

    def expire() -> None:
        timer.close()
        reply._fail(AskTimeout("no reply within the ask's timeout"))

    timer.start(expire)
    # Answered first: the timer goes, on this hub, where it was made.
    reply._slot.on_settled(lambda: worker._inbox.call_soon(timer.close))


# Known shortcoming: not a concurrent.futures.Future subclass, so
# concurrent.futures.wait and as_completed do not take it. Their waiting
# is thread-only (a Condition per call), which would block a whole hub.
class AskFuture:
    """The future reply of :meth:`~geventio.ProxyActor.ask_future`.

    It has the methods of :class:`concurrent.futures.Future` that make sense
    for a reply (``result``, ``exception``, ``done``, ``cancel``,
    ``cancelled``, ``running``, ``add_done_callback``) and they work from
    any thread or hub: waiting blocks only the calling greenlet on a hub,
    the calling thread elsewhere. It is not accepted by
    :func:`concurrent.futures.wait`, whose waiting is thread-only.

    .. versionadded:: 0.1
    """

    __slots__ = ("_deadline", "_reply", "_timeout")

    def __init__(self, reply: _ReplyHandle, timeout: float | None) -> None:
        self._reply = reply
        self._timeout = timeout
        self._deadline = None if timeout is None else _native.monotonic() + timeout

    def _wait(self, timeout: float | None) -> None:
        slot = self._reply._slot
        deadline = self._deadline
        if deadline is not None:
            remaining = max(0.0, deadline - _native.monotonic())
            if timeout is None or remaining <= timeout:
                if not slot.wait(remaining):
                    # Past the ask's own timeout: expire it for good (a
                    # reply that won the race meanwhile is kept).
                    self._reply._fail(
                        AskTimeout(f"no reply within {self._timeout} seconds")
                    )
                return
        if not slot.wait(timeout):
            raise AskTimeout(f"no reply within {timeout} seconds (still waiting)")

    def result(self, timeout: float | None = None) -> Any:
        """The reply; waits at most *timeout* seconds for it.

        Raises:
            AskTimeout: no reply yet (within *timeout*, or past the ask's
                own timeout, after which it never will).
            ProxyStopped, Exception: as :meth:`~geventio.ProxyActor.ask`.
        """
        self._wait(_check_timeout(timeout))
        return self._reply._slot.result()

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The error the ask failed with, or None; waits as :meth:`result`.

        Raises:
            CancelledError: the future was cancelled (as
                :class:`concurrent.futures.Future` does).
        """
        self._wait(_check_timeout(timeout))
        exc = self._reply._slot._exc
        if isinstance(exc, CancelledError):
            raise exc
        return exc

    def done(self) -> bool:
        """True once a reply, an error or a cancellation settled it."""
        return self._reply._slot.done

    def running(self) -> bool:
        """True while no reply has come: the ask is in flight."""
        return not self.done()

    def cancel(self) -> bool:
        """Give up on the reply; True unless it had already settled.

        The message itself stays told; a reply that comes later is a dead
        letter.
        """
        return self._reply._slot.fail(CancelledError("the ask was cancelled"))

    def cancelled(self) -> bool:
        """True if :meth:`cancel` settled it."""
        return isinstance(self._reply._slot._exc, CancelledError)

    def add_done_callback(self, fn: Callable[[AskFuture], Any]) -> None:
        """Call ``fn(self)`` once settled, on the IO system's service thread.

        At once, on that thread, if it has settled already. Never on a
        worker hub; an exception *fn* raises is logged.

        Raises:
            TypeError: *fn* is not callable.
        """
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {fn!r}")
        service = self._reply._cell.io._service
        self._reply._slot.on_settled(lambda: service.call_soon(fn, self))

    def __repr__(self) -> str:
        state = "done" if self.done() else "pending"
        return f"<AskFuture {state} for {self._reply._cell.describe()}>"
