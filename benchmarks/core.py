"""The two core figures of geventio, from a plain thread:

* tell throughput: messages per second that one plain thread tells one
  task, counted until the task handled the last one;
* ask round trip: the median (and 99th percentile) time for the main
  thread to ask a task and get its answer.

    python benchmarks/core.py [--messages N] [--asks N] [--repeat N]

Only geventio's public API is used. The task checks that every message
arrived once and in order; a run that loses one fails instead of printing
a figure. ``python -m geventio bench`` compares these and more with
geventio's peers.
"""

import argparse
import os
import statistics
import sys
from time import perf_counter

# Import the geventio of this checkout, whatever else is installed.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gevent.monkey import get_original

import geventio

allocate_lock = get_original("_thread", "allocate_lock")

WAIT = 60.0  # seconds; the bound on every wait


class Counter(geventio.Task):
    """Checks that it receives 0, 1, ... n-1 in order, then opens a lock."""

    def __init__(self, n, done):
        super().__init__()
        self.expected = 0
        self.out_of_order = 0
        self.last = n - 1
        self.done = done

    def receive(self, message):
        if message != self.expected:
            self.out_of_order += 1
        self.expected = message + 1
        if message == self.last:
            self.done.release()

    def status(self):
        return {"expected": self.expected, "out_of_order": self.out_of_order}


class Echo(geventio.Task):
    """Answers every message with the message itself."""

    def receive(self, message):
        self.sender.tell(message)


def tell_rate(io, n):
    """Tell n numbers to a new Counter task; return messages per second."""
    done = allocate_lock()
    done.acquire()
    counter = Counter.start(io, n, done)
    tell = counter.tell
    t0 = perf_counter()
    for i in range(n):
        tell(i)
    if not done.acquire(True, WAIT):
        raise SystemExit(f"tell: the task did not get all {n} messages")
    elapsed = perf_counter() - t0
    status = counter.ask(geventio.StatusCheck(), timeout=WAIT)
    counter.stop()
    if status != {"expected": n, "out_of_order": 0}:
        raise SystemExit(f"tell: messages lost or out of order: {status}")
    return n / elapsed


def ask_round_trips(io, n):
    """Ask a new Echo task n times; return each round trip in seconds."""
    echo = Echo.start(io)
    samples = []
    for i in range(n):
        t0 = perf_counter()
        answer = echo.ask(i, timeout=WAIT)
        samples.append(perf_counter() - t0)
        if answer != i:
            raise SystemExit(f"ask: asked {i}, got {answer!r}")
    echo.stop()
    return samples


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--asks", type=int, default=3_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    rates, medians, p99s = [], [], []
    with geventio.IOSystem("core-bench", workers=1) as io:
        tell_rate(io, min(args.messages, 2000))  # warm up
        ask_round_trips(io, min(args.asks, 200))
        for _ in range(args.repeat):
            rates.append(tell_rate(io, args.messages))
            samples = sorted(ask_round_trips(io, args.asks))
            medians.append(statistics.median(samples))
            p99s.append(samples[min(len(samples) - 1, int(len(samples) * 0.99))])

    print(
        f"geventio {geventio.__version__}, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs; medians of {args.repeat} runs"
    )
    print(
        f"tell, 1 plain thread -> 1 task: {statistics.median(rates):,.0f} msg/s "
        f"({args.messages:,} messages a run)"
    )
    print(
        f"ask round trip from a plain thread: median "
        f"{statistics.median(medians) * 1e6:.1f} us, p99 "
        f"{statistics.median(p99s) * 1e6:.1f} us ({args.asks:,} asks a run)"
    )


if __name__ == "__main__":
    main()
