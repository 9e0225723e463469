"""Telling and asking one task from a plain thread, a greenlet and a task.

A ProxyActor is safe to use from any thread or hub. ``ask`` blocks only what
it has to: the calling OS thread when called from plain code, only the
calling greenlet when called on a gevent hub (a worker's included).

Run it with ``python examples/ask_from_anywhere.py``. It prints::

    from a plain thread: 2 + 3 = 5
    from a greenlet on the main thread's hub: 20 + 22 = 42
    from a task on another worker: 1 + 1 = 2
    the adder was told 1 note(s)
"""

import threading

import gevent

import geventio


class Adder(geventio.Task):
    """Adds pairs of numbers; keeps count of the notes it is told."""

    def __init__(self):
        super().__init__()
        self.notes = 0

    def receive(self, message):
        if message == "notes?":
            self.sender.tell(self.notes)
        elif isinstance(message, tuple):
            a, b = message
            self.sender.tell(a + b)
        else:
            self.notes += 1


class Client(geventio.Task):
    """Asks the adder from inside its own handling, on another worker."""

    def __init__(self, adder):
        super().__init__()
        self.adder = adder

    def receive(self, message):
        # This ask suspends only this greenlet: the client's worker hub keeps
        # running everything else while the answer travels back.
        total = self.adder.ask(message, timeout=5)
        self.sender.tell(total)


def main():
    with geventio.IOSystem("anywhere", workers=2) as io:
        # Bind each task to a chosen worker instead of round-robin.
        adder = Adder.start(io.workers[0])
        client = Client.start(io.workers[1], adder)

        # 1. A plain OS thread: ask blocks that thread only.
        results = {}

        def in_a_thread():
            results["thread"] = adder.ask((2, 3), timeout=5)

        thread = threading.Thread(target=in_a_thread)
        thread.start()
        thread.join()
        print(f"from a plain thread: 2 + 3 = {results['thread']}")

        # 2. A greenlet on the main thread's own hub: ask blocks only that
        # greenlet, so other greenlets of the main hub keep running.
        greenlet = gevent.spawn(adder.ask, (20, 22), timeout=5)
        print(f"from a greenlet on the main thread's hub: 20 + 22 = {greenlet.get()}")

        # 3. A task on another worker, which asks in turn.
        print(f"from a task on another worker: 1 + 1 = {client.ask((1, 1), timeout=5)}")

        # tell never blocks and needs no answer.
        adder.tell("just so you know")
        print(f"the adder was told {adder.ask('notes?', timeout=5)} note(s)")


if __name__ == "__main__":
    main()
