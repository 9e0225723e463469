"""The public contract of geventio, declared with :mod:`zope.interface`.

Each class geventio exports declares the interface it provides, and the test
suite checks every one with :func:`zope.interface.verify.verifyObject`. The
full behaviour is documented here; the classes add only their extras.
"""

from __future__ import annotations

from zope.interface import Attribute, Interface

__all__ = ["IIOSystem", "IProxyActor", "ISupervisor", "ITask", "IWorker"]


class IProxyActor(Interface):
    """A thread-safe handle to one task."""

    is_alive = Attribute("True until the proxy stops or its task unbinds.")

    def tell(message, sender=None):  # type: ignore[no-untyped-def]
        """Send *message*; any thread or hub; never blocks.

        Inside a task *sender* defaults to that task's proxy. A message to a
        stopped proxy is a dead letter: counted and logged, never raised.
        """

    def ask(message, timeout=None):  # type: ignore[no-untyped-def]
        """Send *message* and return the first reply told to its sender.

        Blocks only the calling greenlet on a gevent hub, the calling
        thread elsewhere. Raises AskTimeout when no reply comes in time and
        ProxyStopped at once, or as soon as the target stops.
        """

    def stop(drain=False):  # type: ignore[no-untyped-def]
        """Stop the task; idempotent; never blocks.

        ``is_alive`` is False when it returns; the task's
        ``shutdown_request`` runs ahead of its queued messages, which
        become dead letters. With *drain*, a PoisonPill is told instead,
        handled after the messages already queued.
        """

    def ask_future(message, timeout=None):  # type: ignore[no-untyped-def]
        """Send *message*; return a future of the reply; never blocks."""

    def join(timeout=None):  # type: ignore[no-untyped-def]
        """Wait until the task has unbound; True if it has."""

    def on_stopped(callback):  # type: ignore[no-untyped-def]
        """Call ``callback(terminated)`` off the hub once the task ended."""


class IWorker(Interface):
    """One native thread running its own gevent hub."""

    name = Attribute("'<iosystem>-worker-<n>'.")
    index = Attribute("Position in the IO system's workers.")
    io = Attribute("The IO system this worker belongs to.")
    hub = Attribute("The worker's gevent hub; touch it only from its thread.")
    ident = Attribute("The native thread's identifier.")
    is_running = Attribute("True while the hub takes work.")

    def stats():  # type: ignore[misc]
        """A snapshot of the worker's counters; any thread; never blocks."""


class IIOSystem(Interface):
    """A named group of workers."""

    name = Attribute("The system's name.")
    workers = Attribute("A tuple of IWorker.")
    is_running = Attribute("True until shutdown() is first called.")
    dead_letters = Attribute("How many messages were dropped so far.")

    def shutdown(timeout=None):  # type: ignore[no-untyped-def]
        """Unbind every task, stop every hub, join every thread.

        Idempotent, from any thread. Returns the workers that did not stop
        within *timeout* (logging a WARNING about them).
        """

    def stats():  # type: ignore[misc]
        """One counters snapshot per worker."""

    def find(name):  # type: ignore[no-untyped-def]
        """The proxy of the live task registered as *name*, or None."""

    def tasks():  # type: ignore[misc]
        """The proxies of every live task."""

    def broadcast(message, cls=None):  # type: ignore[no-untyped-def]
        """Tell *message* to every live task (of class *cls*)."""

    def dump():  # type: ignore[misc]
        """A text snapshot of workers, tasks and stacks."""


class ITask(Interface):
    """A user task bound to one worker; hooks run on that worker's hub."""

    proxy = Attribute("The task's own IProxyActor.")
    sender = Attribute("The sender of the message being handled, or None.")
    worker = Attribute("The IWorker the task is bound to.")
    io = Attribute("The IIOSystem of that worker.")
    is_bound = Attribute("True from on_bind until unbinding begins.")

    def run():  # type: ignore[misc]
        """Called once, in a greenlet on the worker's hub, after binding."""

    def receive(message):  # type: ignore[no-untyped-def]
        """Called once per message, one at a time, in arrival order."""

    def become(handler):  # type: ignore[no-untyped-def]
        """Route later messages to ``handler(message)``."""

    def unbecome():  # type: ignore[misc]
        """Return to the previous handler."""

    def unbind():  # type: ignore[misc]
        """End the task: kill its greenlets, then run on_unbind once."""

    def spawn(fn, *args):  # type: ignore[no-untyped-def]
        """Run ``fn(*args)`` in a greenlet that belongs to the task."""

    def start_child(cls, *args, **kwargs):  # type: ignore[no-untyped-def]
        """Start a child task on the same worker, watched by this one."""

    def watch(proxy):  # type: ignore[no-untyped-def]
        """Be told Terminated once *proxy*'s task ends."""

    def unwatch(proxy):  # type: ignore[no-untyped-def]
        """Stop watching *proxy*."""

    def schedule_once(delay, message, key=None):  # type: ignore[no-untyped-def]
        """Tell *message* to this task after *delay* seconds."""

    def schedule_every(interval, message, key=None):  # type: ignore[no-untyped-def]
        """Tell *message* to this task every *interval* seconds."""

    def cancel(key):  # type: ignore[no-untyped-def]
        """Cancel the timer scheduled under *key*."""

    def forward(message, to):  # type: ignore[no-untyped-def]
        """Tell *message* to *to*, keeping the current sender."""

    def stash():  # type: ignore[misc]
        """Set the message being handled aside."""

    def unstash_all():  # type: ignore[misc]
        """Put the stashed messages back, ahead of queued ones."""

    def run_blocking(fn, *args):  # type: ignore[no-untyped-def]
        """Run ``fn(*args)`` on the hub's thread pool; wait cooperatively."""

    def on_bind():  # type: ignore[misc]
        """Hook: the task is bound."""

    def on_unbind():  # type: ignore[misc]
        """Hook: runs exactly once per bound task, whatever ended it."""

    def on_failure(exc):  # type: ignore[no-untyped-def]
        """Hook: an exception escaped the task, before it unbinds."""

    def shutdown_request():  # type: ignore[misc]
        """Hook: proxy stopped or system shutting down; default unbinds."""

    def status():  # type: ignore[misc]
        """Hook: the answer to a StatusCheck."""


class ISupervisor(Interface):
    """Status-checks tasks and replaces their IO system when one fails."""

    io = Attribute("The supervised IO system now, or None before start().")
    restarts = Attribute("How many times the IO system was replaced.")
    gave_up = Attribute("True once restart intensity was exceeded.")
    reason = Attribute("Why it gave up, or None.")
    is_running = Attribute("True from start() until it stops or gives up.")

    def start():  # type: ignore[misc]
        """Build the IO system, run setup, start checking; returns self."""

    def stop(timeout=None):  # type: ignore[no-untyped-def]
        """Stop checking and shut everything down; idempotent."""

    def status():  # type: ignore[misc]
        """A snapshot: restarts, checks, last failure, abandoned workers."""
