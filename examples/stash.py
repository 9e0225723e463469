"""Stash and become: hold messages back until the task is ready for them.

``self.stash()`` sets the message being handled aside; ``unstash_all()``
puts every stashed message back, in order, ahead of the ones still queued.
``self.become(handler)`` sends later messages to another method, and
``unbecome()`` returns to the previous one.

Run it with ``python examples/stash.py``. It prints::

    stored: ['a', 'b', 'c']
    after close: closed
"""

import gevent

import geventio


class Connected:
    """Told by the task to itself once its (pretend) connection is up."""


class Store(geventio.Task):
    """Takes writes only once connected; stashes those that come earlier."""

    def __init__(self):
        super().__init__()
        self.rows = []

    def run(self):
        # Stands for a slow connect: a cooperative wait on the worker's hub.
        # Messages arrive meanwhile, and receive() stashes them.
        gevent.sleep(0.05)
        self.proxy.tell(Connected())

    def receive(self, message):
        if isinstance(message, Connected):
            self.become(self.connected)
            self.unstash_all()  # handled again, by connected(), in order
        else:
            self.stash()

    def connected(self, message):
        if message == "rows?":
            self.sender.tell(list(self.rows))
        elif message == "close":
            self.become(self.closed)
        else:
            self.rows.append(message)

    def closed(self, message):
        if message == "reopen":
            self.unbecome()  # back to connected()
        elif self.sender is not None:
            self.sender.tell("closed")


def main():
    with geventio.IOSystem("stash", workers=1) as io:
        store = Store.start(io)
        for row in ("a", "b", "c"):
            store.tell(row)  # arrive before the connection is up
        print("stored:", store.ask("rows?", timeout=5))

        store.tell("close")
        print("after close:", store.ask("rows?", timeout=5))


if __name__ == "__main__":
    main()
