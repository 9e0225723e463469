"""Timers: messages a task sends itself later, or periodically.

``schedule_once`` and ``schedule_every`` use timers of the worker hub's own
event loop (no thread per timer); the message arrives in the task's mailbox
like any other. ``cancel(key)`` stops a timer, and every timer of a task is
cancelled when it unbinds.

Run it with ``python examples/timers.py``. It prints::

    tick 1
    tick 2
    tick 3
    ticker cancelled: True
    reminder: time is up
"""

import geventio


class Metronome(geventio.Task):
    """Ticks three times, then waits for a one-off reminder."""

    def __init__(self):
        super().__init__()
        self.lines = []
        self.ticks = 0
        self.waiting = []

    def on_bind(self):
        self.schedule_every(0.01, "tick", key="ticker")
        self.schedule_once(0.1, "time is up")

    def receive(self, message):
        if message == "tick":
            if self.ticks == 3:
                return  # a tick told just before cancel() may still arrive
            self.ticks += 1
            self.lines.append(f"tick {self.ticks}")
            if self.ticks == 3:
                self.lines.append(f"ticker cancelled: {self.cancel('ticker')}")
        elif message == "time is up":
            self.lines.append(f"reminder: {message}")
            for reply in self.waiting:
                reply.tell(self.lines)
        elif message == "lines?":
            self.waiting.append(self.sender)  # answered when the reminder comes


def main():
    with geventio.IOSystem("timers", workers=1) as io:
        metronome = Metronome.start(io)
        for line in metronome.ask("lines?", timeout=5):
            print(line)


if __name__ == "__main__":
    main()
