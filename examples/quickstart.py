"""Quick start: an IO system, a first task, a first tell and a first ask.

Run it with ``python examples/quickstart.py``. It prints::

    Hello, world!
    the greeter greeted 2 time(s)
"""

import geventio


class Greeter(geventio.Task):
    """Answers every message with a greeting."""

    def __init__(self, greeting):
        super().__init__()  # Task.__init__ itself takes no arguments
        self.greeting = greeting
        self.greeted = 0

    def receive(self, message):
        # Runs on the task's own worker thread, one message at a time.
        if message == "how many?":
            self.sender.tell(self.greeted)
            return
        self.greeted += 1
        if self.sender is not None:  # None when told from plain code
            self.sender.tell(f"{self.greeting}, {message}!")


def main():
    # Two worker threads, each running its own gevent hub. Leaving the with
    # block shuts the system down and joins the threads.
    with geventio.IOSystem("quickstart", workers=2) as io:
        greeter = Greeter.start(io, "Hello")  # returns the ProxyActor at once

        greeter.tell("nobody in particular")  # fire and forget
        print(greeter.ask("world", timeout=5))  # send, then wait for the reply
        print(f"the greeter greeted {greeter.ask('how many?', timeout=5)} time(s)")


if __name__ == "__main__":
    main()
