"""Messages the framework itself understands.

Each is handled by the mailbox runner before the task's handler sees the
message stream, in order with the task's other messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._proxy import ProxyActor

__all__ = ["PoisonPill", "StatusCheck", "Terminated"]


class StatusCheck:
    """Ask a task for its status, answered from the task's own loop.

    ``proxy.ask(StatusCheck(), timeout=...)`` returns the status, queued in
    order with the task's other messages; the task never sees it in
    :meth:`~geventio.Task.receive`. The answer is its
    :meth:`~geventio.Task.status`. A loop that is blocked, or a handler that
    hangs, therefore fails the check by timing out.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "StatusCheck()"


class PoisonPill:
    """Stop a task once the messages queued before it are handled.

    ``proxy.tell(PoisonPill())`` (or ``proxy.stop(drain=True)``) is the
    draining counterpart of :meth:`~geventio.ProxyActor.stop`, which overtakes
    queued messages. The task never sees it in :meth:`~geventio.Task.receive`.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "PoisonPill()"


class Terminated:
    """Told to a task that watches another one, once that one has ended.

    Attributes:
        proxy: the :class:`~geventio.ProxyActor` of the task that ended.
        reason: ``"unbound"``, ``"stopped"``, ``"failed"``,
            ``"parent unbound"`` or ``"IO system shut down"``.
        error: the exception it failed with, or None.
    """

    __slots__ = ("error", "proxy", "reason")

    def __init__(
        self, proxy: ProxyActor, reason: str, error: BaseException | None = None
    ) -> None:
        self.proxy = proxy
        self.reason = reason
        self.error = error

    def __repr__(self) -> str:
        return f"Terminated({self.proxy!r}, {self.reason!r}, {self.error!r})"


# Classes the mailbox runner intercepts (one set lookup per message).
SYSTEM_MESSAGES = frozenset({StatusCheck, PoisonPill, Terminated})
