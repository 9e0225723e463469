"""Lifecycle events, published through :mod:`zope.event`.

geventio announces what happens to its tasks and workers the way gevent
announces its own (:mod:`gevent.events`): each event is a plain object
providing an interface declared here, handed to every callable in
``zope.event.subscribers``::

    import zope.event
    from geventio.events import ITaskFailed


    def on_event(event):
        if ITaskFailed.providedBy(event):
            print("failed:", event.proxy, event.error)


    zope.event.subscribers.append(on_event)

Subscribers never run on a worker hub: events are queued and delivered by
the IO system's service thread (the one that also watches for blocked
loops), in the order they happened, so a slow subscriber cannot stall a
task. A subscriber that needs to run synchronously where the event happens
(for instance to record it on the hub itself) subscribes with
:func:`subscribe_on_hub` instead, and must then neither block nor raise.

.. versionadded:: 0.1
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from greenlet import GreenletExit
from zope.interface import Attribute, Interface, implementer

from ._logging import log as _log

__all__ = [
    "DeadLetter",
    "HookFailed",
    "IDeadLetter",
    "IGeventIOEvent",
    "IHookFailed",
    "ISupervisorGaveUp",
    "ISupervisorRestarted",
    "ITaskBound",
    "ITaskFailed",
    "ITaskUnbound",
    "IWorkerBlocked",
    "SupervisorGaveUp",
    "SupervisorRestarted",
    "TaskBound",
    "TaskFailed",
    "TaskUnbound",
    "WorkerBlocked",
    "subscribe_on_hub",
    "unsubscribe_on_hub",
]

log = logging.getLogger(__name__)

# Subscribers called synchronously, where the event happens.
_on_hub: list[Callable[[Any], None]] = []


def subscribe_on_hub(subscriber: Callable[[Any], None]) -> None:
    """Call *subscriber* synchronously wherever an event happens.

    Callable from any thread. The subscriber then runs on worker hubs (and
    on whatever thread raised the event); it must not block, and an
    exception it raises is logged and otherwise ignored.
    """
    if not callable(subscriber):
        raise TypeError(f"subscriber must be callable, got {subscriber!r}")
    _on_hub.append(subscriber)


def unsubscribe_on_hub(subscriber: Callable[[Any], None]) -> None:
    """Undo :func:`subscribe_on_hub`; any thread; a no-op if absent."""
    try:
        _on_hub.remove(subscriber)
    except ValueError:
        pass


def wanted() -> bool:
    """True if anybody listens; checked before building an event."""
    import zope.event

    return bool(zope.event.subscribers or _on_hub)


def notify_on_hub(event: Any) -> None:
    """Run the synchronous subscribers for *event* (where it happened)."""
    for subscriber in list(_on_hub):
        try:
            subscriber(event)
        except GreenletExit:
            raise
        except BaseException as exc:
            # SystemExit included: a subscriber must not end a worker.
            _log(
                log,
                logging.ERROR,
                "event subscriber %r raised",
                subscriber,
                exc_info=exc,
            )


class IGeventIOEvent(Interface):  # type: ignore[misc]
    """Base of every geventio event."""


class ITaskBound(IGeventIOEvent):
    """A task was bound to its worker (its ``on_bind`` returned)."""

    proxy = Attribute("The task's ProxyActor.")
    task_class = Attribute("The task's class.")
    worker = Attribute("The Worker it is bound to.")


class ITaskUnbound(IGeventIOEvent):
    """A task finished unbinding (its ``on_unbind`` returned)."""

    proxy = Attribute("The task's ProxyActor.")
    task_class = Attribute("The task's class.")
    reason = Attribute("'unbound', 'stopped', 'failed' or 'IO system shut down'.")
    error = Attribute("The exception that ended it, or None.")


class ITaskFailed(IGeventIOEvent):
    """An exception escaped a task (it is about to unbind)."""

    proxy = Attribute("The task's ProxyActor.")
    task_class = Attribute("The task's class.")
    error = Attribute("The exception.")


class IHookFailed(IGeventIOEvent):
    """An exception escaped code that runs after a task's failure or end.

    ``on_failure``, ``on_unbind`` and callbacks given to
    :meth:`~geventio.ProxyActor.on_stopped` run while a task is already
    ending, so an exception from them is not a failure of the task: it is
    logged, announced with this event, and the task ends as it would have.
    """

    proxy = Attribute("The task's ProxyActor.")
    task_class = Attribute("The task's class.")
    hook = Attribute("'on_failure', 'on_unbind' or 'on_stopped'.")
    error = Attribute("The exception.")


class IDeadLetter(IGeventIOEvent):
    """A message could not be delivered and was dropped."""

    to = Attribute("The ProxyActor it was told to.")
    message = Attribute("The message.")
    sender = Attribute("Its sender, or None.")


class IWorkerBlocked(IGeventIOEvent):
    """A worker's loop has been held longer than its IO system's threshold."""

    worker = Attribute("The Worker.")
    blocked_by = Attribute("A description of the task holding the loop.")
    lag = Attribute("How late the loop runs, in seconds.")
    stack = Attribute("The blocked thread's stack, as text.")


class ISupervisorRestarted(IGeventIOEvent):
    """A Supervisor replaced its IO system."""

    supervisor = Attribute("The Supervisor.")
    reason = Attribute("Why, in words.")
    restarts = Attribute("How many restarts so far, this one included.")


class ISupervisorGaveUp(IGeventIOEvent):
    """A Supervisor exceeded its restart intensity and stopped everything."""

    supervisor = Attribute("The Supervisor.")
    reason = Attribute("Why, in words.")


class _Event:
    """Plain attribute holder with a readable repr."""

    # Positional order of the constructor's arguments (ruff keeps
    # __slots__ sorted, so the order cannot live there).
    _fields: tuple[str, ...] = ()
    __slots__: tuple[str, ...] = ()

    def __init__(self, *values: Any) -> None:
        for name, value in zip(self._fields, values, strict=True):
            setattr(self, name, value)

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._fields)
        return f"{type(self).__name__}({fields})"


@implementer(ITaskBound)
class TaskBound(_Event):
    _fields = ("proxy", "task_class", "worker")
    __slots__ = _fields


@implementer(ITaskUnbound)
class TaskUnbound(_Event):
    _fields = ("proxy", "task_class", "reason", "error")
    __slots__ = _fields


@implementer(ITaskFailed)
class TaskFailed(_Event):
    _fields = ("proxy", "task_class", "error")
    __slots__ = _fields


@implementer(IHookFailed)
class HookFailed(_Event):
    _fields = ("proxy", "task_class", "hook", "error")
    __slots__ = _fields


@implementer(IDeadLetter)
class DeadLetter(_Event):
    _fields = ("to", "message", "sender")
    __slots__ = _fields


@implementer(IWorkerBlocked)
class WorkerBlocked(_Event):
    _fields = ("worker", "blocked_by", "lag", "stack")
    __slots__ = _fields


@implementer(ISupervisorRestarted)
class SupervisorRestarted(_Event):
    _fields = ("supervisor", "reason", "restarts")
    __slots__ = _fields


@implementer(ISupervisorGaveUp)
class SupervisorGaveUp(_Event):
    _fields = ("supervisor", "reason")
    __slots__ = _fields
