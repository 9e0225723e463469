"""Lifecycle events: watch what happens to tasks, through zope.event.

geventio publishes plain event objects (declared in :mod:`geventio.events`)
to every callable in ``zope.event.subscribers``. They are delivered by the IO
system's service thread, in order, never on a worker hub: a slow subscriber
cannot stall a task.

Run it with ``python examples/lifecycle_events.py``. It prints::

    TaskBound: Doomed
    TaskFailed: Doomed, ZeroDivisionError
    TaskUnbound: Doomed, failed
    DeadLetter: 'anyone there?'
"""

import threading

import zope.event

import geventio
from geventio import events

seen = []
done = threading.Event()


def subscriber(event):
    # Runs on the IO system's service thread. Other events (supervisors,
    # blocked workers, other libraries' events) may come too: filter by
    # interface, as gevent's own events are filtered.
    if events.ITaskBound.providedBy(event):
        seen.append(f"TaskBound: {event.task_class.__name__}")
    elif events.ITaskFailed.providedBy(event):
        seen.append(
            f"TaskFailed: {event.task_class.__name__}, {type(event.error).__name__}"
        )
    elif events.ITaskUnbound.providedBy(event):
        seen.append(f"TaskUnbound: {event.task_class.__name__}, {event.reason}")
    elif events.IDeadLetter.providedBy(event):
        seen.append(f"DeadLetter: {event.message!r}")
        done.set()


class Doomed(geventio.Task):
    def receive(self, message):
        return 1 / 0


def main():
    zope.event.subscribers.append(subscriber)
    try:
        with geventio.IOSystem("events", workers=1) as io:
            doomed = Doomed.start(io)
            doomed.tell("divide, please")
            doomed.join(timeout=5)
            doomed.tell("anyone there?")  # a dead letter now
            done.wait(timeout=5)
    finally:
        zope.event.subscribers.remove(subscriber)
    for line in seen:
        print(line)


if __name__ == "__main__":
    main()
