"""The registry: find tasks by name, per IO system, without globals.

``Task.start_named(name, io, ...)`` registers the task under *name* in its
IO system; ``io.find(name)`` returns its proxy (or None), ``io.tasks()``
lists the live tasks and ``io.broadcast()`` tells all of them (or those of
one class). A name is freed when its task ends, and two IO systems never see
each other's names.

Run it with ``python examples/registry.py``. It prints::

    found 'config': True
    a second 'config': ValueError
    the other system's 'config': other
    live tasks: 3
    reload told to 2 cache(s)
    cache answers: ['a reloaded 1 time(s)', 'b reloaded 1 time(s)']
    after stop and join, find('config') is None: True
"""

import geventio


class Config(geventio.Task):
    def __init__(self, label):
        super().__init__()
        self.label = label

    def receive(self, message):
        self.sender.tell(self.label)


class Cache(geventio.Task):
    def __init__(self, name):
        # start_named takes the registry name positionally, so a task may
        # have a constructor argument called "name" of its own.
        super().__init__()
        self.name = name
        self.reloads = 0

    def receive(self, message):
        if message == "reload":
            self.reloads += 1
        elif message == "status?":
            self.sender.tell(f"{self.name} reloaded {self.reloads} time(s)")


def main():
    with (
        geventio.IOSystem("main", workers=2) as io,
        geventio.IOSystem("other", workers=1) as other,
    ):
        config = Config.start_named("config", io, "main")
        Config.start_named("config", other, "other")  # no clash: another system
        Cache.start_named("cache-a", io, name="a")
        Cache.start_named("cache-b", io, name="b")

        print("found 'config':", io.find("config") is config)
        try:
            Config.start_named("config", io, "again")
        except ValueError:
            print("a second 'config': ValueError")
        print("the other system's 'config':", other.find("config").ask("?", timeout=5))

        print("live tasks:", len(io.tasks()))
        print("reload told to", io.broadcast("reload", cls=Cache), "cache(s)")
        answers = [io.find(f"cache-{n}").ask("status?", timeout=5) for n in "ab"]
        print("cache answers:", answers)

        config.stop()
        config.join(timeout=5)
        print("after stop and join, find('config') is None:", io.find("config") is None)


if __name__ == "__main__":
    main()
