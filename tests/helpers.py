"""Test helpers: native waiting and process resource counts."""

import os

from geventio import _native
from geventio._mailbox import OneShot

WAIT = 10.0  # seconds; the bound on every wait in the suite


def os_threads():
    """How many OS threads this process has (from /proc, not threading)."""
    return len(os.listdir("/proc/self/task"))


def open_fds():
    """How many file descriptors this process has open."""
    return len(os.listdir("/proc/self/fd"))


def wait_until(predicate, timeout=WAIT, what="condition"):
    """Wait, bounded, for a condition that the OS settles on its own (a
    thread's exit), re-checking on a short native back-off."""
    deadline = _native.monotonic() + timeout
    delay = 0.0005
    while not predicate():
        if _native.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        _native.sleep(delay)
        delay = min(delay * 2, 0.05)


class Recorder:
    """A thread-safe list that tests wait on: tasks append, tests wait for N.

    Safe from any thread or hub; ``wait_for`` blocks only the calling
    greenlet when called on a hub.
    """

    def __init__(self):
        self._lock = _native.allocate_lock()
        self.items = []
        self._waiters = []

    def append(self, item):
        with self._lock:
            self.items.append(item)
            ready = [w for w in self._waiters if w[0](self.items)]
            self._waiters = [w for w in self._waiters if w not in ready]
        for _, signal in ready:
            signal.set()

    def wait(self, predicate, timeout=WAIT, what="items"):
        """Wait until ``predicate(items)`` holds; return a copy of them."""
        with self._lock:
            if predicate(self.items):
                return list(self.items)
            signal = OneShot()
            self._waiters.append((predicate, signal))
        if not signal.wait(timeout):
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what}: {self.items!r}"
            )
        with self._lock:
            return list(self.items)

    def wait_for(self, n, timeout=WAIT):
        """Return the first *n* items once there are that many."""
        return self.wait(lambda items: len(items) >= n, timeout, f"{n} items")[:n]

    def wait_for_item(self, item, timeout=WAIT):
        """Return all items once *item* is among them."""
        return self.wait(lambda items: item in items, timeout, repr(item))

    def __len__(self):
        with self._lock:
            return len(self.items)


def run_in_thread(fn, timeout=WAIT):
    """Run ``fn()`` in a new native thread; return its result or raise."""
    done = OneShot()

    def main():
        try:
            done.set(fn())
        except BaseException as exc:
            done.fail(exc)

    _native.start_new_thread(main, ())
    return done.get(timeout)


def run_in_main_hub(fn, timeout=WAIT):
    """Run ``fn()`` in a greenlet on the calling thread's hub."""
    import gevent
    from gevent._hub_local import get_hub_if_exists

    had_hub = get_hub_if_exists() is not None
    try:
        g = gevent.spawn(fn)
        g.join(timeout)
        assert g.ready(), "greenlet on the main hub did not finish"
        return g.get()
    finally:
        if not had_hub:
            # The hub (and its descriptors) was made for this call only.
            gevent.get_hub().destroy(destroy_loop=True)


CALLERS = ("main", "thread", "main_hub", "task")


def call_from(kind, fn, io=None, timeout=WAIT):
    """Run ``fn()`` from one kind of caller and return what it returned.

    ``task`` runs it inside a task on *io* (an IO system of its own), so the
    call crosses from one worker hub to another.
    """
    if kind == "main":
        return fn()
    if kind == "thread":
        return run_in_thread(fn, timeout)
    if kind == "main_hub":
        return run_in_main_hub(fn, timeout)
    if kind == "task":
        from geventio import Task

        class Caller(Task):
            def receive(self, message):
                try:
                    self.sender.tell(("ok", message()))
                except BaseException as exc:
                    self.sender.tell(("err", exc))

        proxy = Caller.start(io)
        status, value = proxy.ask(fn, timeout=timeout)
        proxy.stop()
        if status == "err":
            raise value
        return value
    raise ValueError(kind)
