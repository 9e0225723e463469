"""ProxyActor: the thread-safe handle through which anyone talks to a task."""

from __future__ import annotations

from numbers import Real
from typing import TYPE_CHECKING, Any

from greenlet import getcurrent
from zope.interface import implementer

from ._mailbox import OneShot
from .errors import GeventIOError, ProxyStopped, WouldDeadlock
from .interfaces import IProxyActor

if TYPE_CHECKING:
    from ._task import _Cell

__all__ = ["ProxyActor"]


def _check_timeout(timeout: object) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, Real):
        raise TypeError(f"timeout must be a number of seconds or None, got {timeout!r}")
    if timeout < 0:
        raise ValueError(f"timeout must not be negative, got {timeout!r}")
    return float(timeout)


def _current_proxy() -> ProxyActor | None:
    """The proxy of the task whose greenlet is running, if any."""
    cell = getattr(getcurrent(), "geventio_cell", None)
    return None if cell is None else cell.proxy


@implementer(IProxyActor)
class ProxyActor:
    """A thread-safe handle to one task.

    The contract is :class:`~geventio.interfaces.IProxyActor`.

    Returned by :meth:`Task.start`; a task reaches its own as
    :attr:`Task.proxy` and the sender of the message it handles as
    :attr:`Task.sender`. Proxies compare by identity: each task has exactly
    one.

    .. versionadded:: 0.1
    """

    __slots__ = ("__weakref__", "_cell")

    def __init__(self, cell: _Cell) -> None:
        self._cell = cell

    def tell(self, message: Any, sender: ProxyActor | None = None) -> None:
        """Send *message* to the task; any thread or hub; never blocks.

        Args:
            message: any object; it is handed over by reference, not copied.
            sender: where replies go (:attr:`Task.sender` on the other
                side). Inside a task it defaults to that task's own proxy.

        Raises:
            TypeError: *sender* is neither None nor a ProxyActor.

        A message told to a stopped proxy is a dead letter: counted in
        :attr:`IOSystem.dead_letters`, logged at DEBUG, never raised.
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
            the first message the task tells to :attr:`Task.sender` while
            handling *message*.

        Raises:
            ProxyStopped: at once if the proxy is stopped, and promptly if it
                stops while the ask waits.
            AskTimeout: no reply within *timeout*.
            WouldDeadlock: a task asked its own proxy from inside its own
                message handling, or the caller is a hub greenlet.
            Exception: whatever the task raised while handling *message*.
        """
        timeout = _check_timeout(timeout)
        cell = self._cell
        if not cell.alive:
            raise ProxyStopped(f"{self!r} is stopped")
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
                raise ProxyStopped(f"{self!r} is stopped")
            self.tell(message, reply)
            return reply._slot.get(timeout)
        finally:
            asks.discard(reply)

    def stop(self) -> None:
        """Stop the task; any thread or hub; idempotent; never blocks.

        :attr:`is_alive` is False once this returns. The task's hub runs its
        :meth:`~Task.shutdown_request` ahead of any message still queued,
        then unbinds it; queued and later messages become dead letters.
        """
        self._cell.request_stop()

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
        if not self._slot.set(message):
            self._cell.io._dead_letter(self, message, sender)

    def ask(self, message: Any, timeout: float | None = None) -> Any:
        raise GeventIOError("a reply handle cannot be asked; tell it the answer")

    def stop(self) -> None:
        self._fail(ProxyStopped("the reply handle was stopped"))

    def _fail(self, exc: BaseException) -> None:
        self._slot.fail(exc)

    @property
    def is_alive(self) -> bool:
        return not self._slot.done

    def __repr__(self) -> str:
        state = "answered" if self._slot.done else "waiting"
        return f"<reply handle {state}, ask to {self._cell.describe()}>"
