"""run_blocking: keep a worker responsive around a blocking call.

A task shares its worker's hub with every other task bound there. A call
that blocks the thread (a library that knows nothing of gevent, or heavy
computing) would stall them all; ``self.run_blocking(fn, *args)`` runs it on
the worker hub's own native thread pool instead and suspends only the
calling greenlet until it returns.

Run it with ``python examples/run_blocking.py``. It prints::

    report: 3 row(s)
    pings answered while the report ran: 5
"""

import time

import geventio


def legacy_report(rows):
    """A blocking call from a library that does not cooperate with gevent."""
    time.sleep(0.3)
    return f"{len(rows)} row(s)"


class Reporter(geventio.Task):
    def receive(self, message):
        # Only this greenlet waits; the hub goes on serving other tasks.
        self.sender.tell(self.run_blocking(legacy_report, message))


class Pinger(geventio.Task):
    def receive(self, message):
        self.sender.tell("pong")


def main():
    with geventio.IOSystem("offload", workers=1) as io:
        # Both tasks share the one worker thread and its hub.
        reporter = Reporter.start(io)
        pinger = Pinger.start(io)

        report = reporter.ask_future(["x", "y", "z"], timeout=5)
        answered = 0
        while not report.done() and answered < 5:
            pinger.ask("ping", timeout=1)
            answered += 1
        print("report:", report.result())
        print("pings answered while the report ran:", answered)


if __name__ == "__main__":
    main()
