"""A monkey-patched service: a server and its background work, kept apart.

A legacy gevent program calls ``gevent.monkey.patch_all()`` before anything
else. geventio works the same there: its workers stay native threads. This
service runs its TCP server on one IO system and its background work (here:
keeping statistics, flushed on a timer) on another, so that the background
work can never hold up the server's event loop, nor the server the work.

Run it with ``python examples/monkey_service.py``. It prints::

    server answered: HELLO
    server answered: WORLD
    statistics: 2 request(s), 12 byte(s)
"""

from gevent import monkey

monkey.patch_all()  # first, before any other import, as legacy services do

# Import everything at module level, before any worker runs: see the
# "Monkey-patched programs" page for why first imports inside tasks can hang.
import socket  # noqa: E402  (patched by patch_all above)

from gevent.server import StreamServer  # noqa: E402

import geventio  # noqa: E402


class Statistics(geventio.Task):
    """Background work: counts requests and flushes totals every 10 ms."""

    def __init__(self):
        super().__init__()
        self.pending = []
        self.totals = {"requests": 0, "bytes": 0}

    def on_bind(self):
        self.schedule_every(0.01, "flush")

    def receive(self, message):
        if message == "flush":
            self.flush()
        elif message == "totals?":
            self.flush()
            self.sender.tell(dict(self.totals))
        else:
            self.pending.append(message)

    def flush(self):
        for size in self.pending:
            self.totals["requests"] += 1
            self.totals["bytes"] += size
        self.pending.clear()


class EchoServer(geventio.Task):
    """Upper-cases each line it reads; tells the statistics task about it."""

    def __init__(self, statistics):
        super().__init__()
        self.statistics = statistics

    def on_bind(self):
        # The server's greenlets live on this worker's hub. Starting it in
        # on_bind means its address is known before any message is handled.
        self.server = StreamServer(("127.0.0.1", 0), self.handle)
        self.server.start()

    def handle(self, sock, address):
        with sock, sock.makefile("rwb") as stream:
            for line in stream:
                # tell() from a server greenlet: thread-safe, never blocks.
                # Told before answering, so a client that has its answer
                # knows the statistics task has the message queued.
                self.statistics.tell(len(line))
                stream.write(line.upper())
                stream.flush()

    def receive(self, message):
        if message == "address?":
            self.sender.tell(self.server.address)

    def on_unbind(self):
        self.server.stop(timeout=1)


def main():
    with (
        geventio.IOSystem("server", workers=1) as server_io,
        geventio.IOSystem("background", workers=1) as background_io,
    ):
        statistics = Statistics.start(background_io)
        server = EchoServer.start(server_io, statistics)
        address = server.ask("address?", timeout=5)

        # The main thread is patched too: this socket is gevent's.
        with socket.create_connection(address, timeout=5) as conn:
            stream = conn.makefile("rwb")
            for word in (b"hello\n", b"world\n"):
                stream.write(word)
                stream.flush()
                print("server answered:", stream.readline().decode().strip())
            stream.close()

        totals = statistics.ask("totals?", timeout=5)
        print(f"statistics: {totals['requests']} request(s), {totals['bytes']} byte(s)")


if __name__ == "__main__":
    main()
