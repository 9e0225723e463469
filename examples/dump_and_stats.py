"""Looking inside a running IO system: stats() and dump().

``io.stats()`` returns one dict of counters per worker; ``io.dump()``
returns a text snapshot of every worker: its thread, its tasks (class,
registry name, state, mailbox depth, the message being handled) and the
stacks of their suspended greenlets. Both are safe from any thread and
never block. Use them when a program seems stuck.

Run it with ``python examples/dump_and_stats.py``. It prints the stats and
then a dump, whose addresses, thread ids and timings vary from run to run.
"""

import gevent

import geventio


class Sleeper(geventio.Task):
    def receive(self, message):
        self.sender.tell("napping")  # answers the ask: handling has begun
        gevent.sleep(10)  # suspended here when the dump is taken


class Idle(geventio.Task):
    pass


def main():
    with geventio.IOSystem("inspect", workers=1) as io:
        sleeper = Sleeper.start_named("sleeper", io)
        Idle.start(io)
        sleeper.ask("nap", timeout=5)  # returns once the nap has begun
        sleeper.tell("later")  # waits in the mailbox meanwhile

        stats = io.stats()[0]
        print(
            f"worker {stats['worker']}: {stats['tasks']} task(s), "
            f"{stats['queued']} message(s) queued"
        )
        print(io.dump())


if __name__ == "__main__":
    main()
