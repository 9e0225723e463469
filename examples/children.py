"""Children: tasks that belong to a parent task and end with it.

``self.start_child(TaskClass, *args)`` binds a child (on the parent's worker)
and watches it: a child that ends on its own reaches the parent as a
:class:`geventio.Terminated` message, so the parent decides what to do. When
the parent unbinds, its children are stopped, and have finished unbinding,
before the parent's own ``on_unbind`` runs.

Run it with ``python examples/children.py``. It prints::

    job 'fine' -> done: fine
    job 'crash' -> failed: RuntimeError('crash')
    job 'again' -> done: again
    children started: 2
    order of unbinding: child, parent
"""

import geventio


class Child(geventio.Task):
    def __init__(self, journal):
        super().__init__()
        self.journal = journal

    def receive(self, message):
        if message == "crash":
            raise RuntimeError("crash")  # also the answer to the pending ask
        self.sender.tell(f"done: {message}")

    def on_unbind(self):
        self.journal.append("child")


class Parent(geventio.Task):
    """Hands jobs to one child and starts a new child when it fails."""

    def __init__(self, journal):
        super().__init__()
        self.journal = journal
        self.started = 0

    def on_bind(self):
        self.new_child()

    def new_child(self):
        self.child = self.start_child(Child, self.journal)
        self.started += 1

    def receive(self, message):
        if isinstance(message, geventio.Terminated):
            # Our own policy: replace a child that failed. Its on_unbind has
            # run by now (Terminated comes after it), so forget its entry.
            self.journal.clear()
            self.new_child()
            self.unstash_all()  # jobs that arrived in between, in order
        elif message == "children started?":
            self.sender.tell(self.started)
        elif not self.child.is_alive:
            self.stash()  # the child is gone; wait for its Terminated
        else:
            # forward keeps the asker as the sender: the child answers it
            # directly, and a failure of the child fails that ask.
            self.forward(message, self.child)

    def on_unbind(self):
        # Runs after every child has finished unbinding.
        self.journal.append("parent")


def main():
    journal = []
    with geventio.IOSystem("children", workers=1) as io:
        parent = Parent.start(io, journal)
        for job in ("fine", "crash", "again"):
            try:
                answer = parent.ask(job, timeout=5)
            except RuntimeError as exc:
                answer = f"failed: {exc!r}"
            print(f"job {job!r} ->", answer)
        print("children started:", parent.ask("children started?", timeout=5))

        parent.stop()
        parent.join(timeout=5)  # True once the parent's on_unbind is done
    print("order of unbinding:", ", ".join(journal))


if __name__ == "__main__":
    main()
