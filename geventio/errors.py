"""The exceptions geventio raises.

Every error derives from :class:`~geventio.GeventIOError`, so one
``except`` clause catches them all; where a builtin already names the
situation (a timeout), the error derives from that builtin too, so
existing handlers keep working.
"""

from __future__ import annotations

__all__ = [
    "AskTimeout",
    "GeventIOError",
    "IOSystemShutdown",
    "ProxyStopped",
    "StallInterrupted",
    "WouldDeadlock",
]


class GeventIOError(Exception):
    """Base class of every error raised by geventio."""


class AskTimeout(GeventIOError, TimeoutError):
    """No reply arrived within the timeout of an ask.

    Raised by :meth:`~geventio.ProxyActor.ask` and by the results of
    :meth:`~geventio.ProxyActor.ask_future`.

    Not a programming error: the target may be slow or overloaded. The
    message was sent and may still be handled later; a reply arriving after
    the timeout is counted as a dead letter.
    """


class ProxyStopped(GeventIOError):
    """The target of an ask, or the worker of a start, is no longer alive.

    Raised at once when asking a proxy that has already stopped, and
    promptly to an ask that was waiting when its target stopped.
    """


class IOSystemShutdown(GeventIOError):
    """Work was given to an :class:`~geventio.IOSystem` that is shut down.

    A programming error in the caller: check
    :attr:`~geventio.IOSystem.is_running` or keep the system alive while
    using it.
    """


class WouldDeadlock(GeventIOError, RuntimeError):
    """A blocking call was made where it could never return.

    Raised when a task asks its own proxy from inside its own message
    handling (the reply could only be produced by the very greenlet that
    waits for it), or when a blocking call is made from a hub greenlet
    itself. Always a programming error.
    """


class StallInterrupted(GeventIOError):
    """Raised asynchronously inside a task that stalled a shutting-down worker.

    When :meth:`~geventio.IOSystem.shutdown` has used half its timeout
    while a worker's loop is blocked, it raises this in that worker's
    thread, as a best effort: it lands only in pure-Python code (a busy
    loop), never in a C call that blocks. The task then fails and unbinds
    like any other.
    """
