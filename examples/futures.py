"""Futures and forwarding: ask without blocking, reply past a middleman.

``proxy.ask_future(message, timeout)`` sends at once and returns an
``AskFuture``, which has the methods of ``concurrent.futures.Future`` that
fit a reply; waiting on it blocks only the calling greenlet on a hub, the
calling thread elsewhere.
``self.forward(message, to)`` passes a message on with its original sender,
so the final task answers the asker directly.

Run it with ``python examples/futures.py``. It prints::

    squares: [0, 1, 4, 9, 16]
    through the router: 49
    a callback saw: 64
    no reply in time: AskTimeout
"""

import threading

import geventio


class Squarer(geventio.Task):
    def receive(self, message):
        if message == "ignore me":
            return  # never answers: the asker's timeout decides
        self.sender.tell(message * message)


class Router(geventio.Task):
    """Hands every message on to one of its backends, round-robin."""

    def __init__(self, backends):
        super().__init__()
        self.backends = backends
        self.turn = 0

    def receive(self, message):
        backend = self.backends[self.turn % len(self.backends)]
        self.turn += 1
        # The backend sees the original asker as its sender and answers it
        # straight away; the router is out of the loop.
        self.forward(message, backend)


def main():
    with geventio.IOSystem("futures", workers=2) as io:
        squarers = [Squarer.start(io) for _ in range(2)]
        router = Router.start(io, squarers)

        # Five questions in flight at once, then collect the answers.
        futures = [router.ask_future(n, timeout=5) for n in range(5)]
        print("squares:", [f.result() for f in futures])

        print("through the router:", router.ask(7, timeout=5))

        # A done-callback runs on the IO system's service thread, never on a
        # worker hub and never in the caller.
        seen = []
        called = threading.Event()

        def on_done(future):
            seen.append(future.result())
            called.set()

        router.ask_future(8, timeout=5).add_done_callback(on_done)
        called.wait(timeout=5)
        print("a callback saw:", seen[0])

        late = squarers[0].ask_future("ignore me", timeout=0.05)
        try:
            late.result()
        except geventio.AskTimeout as exc:
            print("no reply in time:", type(exc).__name__)


if __name__ == "__main__":
    main()
