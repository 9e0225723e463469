"""Death watch: learn when a task you only tell has ended, and why.

Inside a task, ``self.watch(proxy)`` delivers one :class:`geventio.Terminated`
message when the watched task ends. Outside tasks, ``proxy.on_stopped()``
calls back once it has ended and ``proxy.join()`` waits for it.

Run it with ``python examples/death_watch.py``. It prints::

    the guardian heard: failed with ValueError('broken on purpose')
    joined the second task: True
    on_stopped said: stopped
"""

import threading

import geventio


class Fragile(geventio.Task):
    """Fails on the message "break"."""

    def receive(self, message):
        if message == "break":
            raise ValueError("broken on purpose")


class Guardian(geventio.Task):
    """Watches one task and answers "news?" once it has ended."""

    def __init__(self, watched):
        super().__init__()
        self.watched = watched
        self.news = None
        self.waiting = []  # reply handles of asks not answered yet

    def on_bind(self):
        # Watching a task that has already ended delivers Terminated at once.
        self.watch(self.watched)

    def receive(self, message):
        # Proxies compare by identity: each task has exactly one.
        if isinstance(message, geventio.Terminated) and message.proxy is self.watched:
            self.news = f"{message.reason} with {message.error!r}"
            for reply in self.waiting:
                reply.tell(self.news)
            self.waiting.clear()
        elif message == "news?":
            if self.news is None:
                # Keep the reply handle: the answer comes later.
                self.waiting.append(self.sender)
            else:
                self.sender.tell(self.news)


def main():
    with geventio.IOSystem("death-watch", workers=2) as io:
        fragile = Fragile.start(io)
        guardian = Guardian.start(io, fragile)

        fragile.tell("break")  # the failure is logged at ERROR, then it unbinds
        print("the guardian heard:", guardian.ask("news?", timeout=5))

        # From plain code: a callback (run on the IO system's service thread,
        # never on a worker hub) and a bounded wait.
        heard = []
        called = threading.Event()

        def stopped(terminated):
            heard.append(terminated.reason)
            called.set()

        second = Fragile.start(io)
        second.on_stopped(stopped)
        second.stop()
        print("joined the second task:", second.join(timeout=5))
        called.wait(timeout=5)
        print("on_stopped said:", heard[0])


if __name__ == "__main__":
    main()
