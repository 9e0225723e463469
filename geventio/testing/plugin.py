"""pytest fixtures for code built on geventio.

Enable them in a project's ``conftest.py``::

    pytest_plugins = ["geventio.testing.plugin"]

(geventio also registers this module under pytest's ``pytest11`` entry
point, so an installed geventio makes the fixtures available without that
line; nothing happens unless a test asks for one of them).

Importing this module imports geventio and gevent, which patch nothing,
so a ``conftest.py`` can still call ``gevent.monkey.patch_all()`` after it
(see the testing page of the documentation).

Fixtures:

``io_system``
    A one-worker :class:`~geventio.IOSystem` for the test.
``io_system_factory``
    ``io_system_factory(name="test", workers=1, **options)`` makes as many
    as the test needs.

After the test, every system made by either is shut down, and the test
fails if a task failed, or one of its ``on_failure``, ``on_unbind`` or
``on_stopped`` hooks raised, and the test did not expect it (call
``io_system_factory.expect_failures()`` when it does; the failures are in
``io_system_factory.failures``), if a worker did not stop, if the process
has more OS threads than before the test, or more open file descriptors.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

__all__ = ["IOSystemFactory", "io_system", "io_system_factory"]


def _count(path: str) -> int | None:
    try:
        return len(os.listdir(path))
    except OSError:  # not Linux: the checks that need /proc are skipped
        return None


def _describe(failure: Any) -> str:
    hook = getattr(failure, "hook", None)
    where = f"{hook} of {failure.proxy!r}" if hook else repr(failure.proxy)
    return f"{where} raised {failure.error!r}"


class IOSystemFactory:
    """What the ``io_system_factory`` fixture returns."""

    def __init__(self) -> None:
        from geventio import _native

        self.systems: list[Any] = []
        self.failures: list[Any] = []
        self._expect_failures = False
        self._lock = _native.allocate_lock()
        self._threads = _count("/proc/self/task")
        self._fds = _count("/proc/self/fd")
        from gevent._hub_local import get_hub_if_exists

        self._had_hub = get_hub_if_exists() is not None

    def __call__(self, name: str = "test", workers: int = 1, **options: Any) -> Any:
        """Start and return an IO system, shut down after the test."""
        from geventio import IOSystem

        io = IOSystem(name, workers=workers, **options)
        self.systems.append(io)
        return io

    def expect_failures(self) -> None:
        """Let tasks fail in this test without failing the test."""
        self._expect_failures = True

    def _on_event(self, event: Any) -> None:
        # Runs on a worker hub (subscribe_on_hub): record, never block.
        from geventio.events import IHookFailed, ITaskFailed

        failed = ITaskFailed.providedBy(event) or IHookFailed.providedBy(event)
        if failed and event.proxy._cell.io in self.systems:
            with self._lock:
                self.failures.append(event)

    def _finish(self) -> list[str]:
        from geventio.testing import scaled, wait_until

        problems = []
        for io in self.systems:
            stuck = io.shutdown(timeout=scaled(10.0))
            if stuck:
                problems.append(f"{io!r}: workers did not stop: {stuck!r}")
        self._destroy_test_hub()
        if self.failures and not self._expect_failures:
            described = "; ".join(map(_describe, self.failures))
            problems.append(f"unexpected task failures: {described}")
        if self._threads is not None:
            try:
                wait_until(
                    lambda: (_count("/proc/self/task") or 0) <= (self._threads or 0),
                    timeout=10.0,
                    what="threads to exit",
                )
            except AssertionError:
                problems.append(
                    f"threads left running: {_count('/proc/self/task')} "
                    f"now, {self._threads} before the test"
                )
        if self._fds is not None and (_count("/proc/self/fd") or 0) > self._fds:
            problems.append(
                f"file descriptors leaked: {_count('/proc/self/fd')} open now, "
                f"{self._fds} before the test"
            )
        return problems

    def _destroy_test_hub(self) -> None:
        # A hub the test itself created in this thread (a gevent.spawn, a
        # gevent.sleep) holds descriptors of its own. It is not a leak of
        # the code under test: destroy it, as the IO systems are shut down.
        from gevent._hub_local import get_hub_if_exists

        hub = get_hub_if_exists()
        if hub is not None and not self._had_hub:
            hub.destroy(destroy_loop=True)


@pytest.fixture
def io_system_factory() -> Iterator[IOSystemFactory]:
    """Make IO systems; check for failures and leaks after the test."""
    from geventio.events import subscribe_on_hub, unsubscribe_on_hub

    factory = IOSystemFactory()
    subscribe_on_hub(factory._on_event)
    try:
        yield factory
        # Still subscribed: shutting down runs hooks that may raise.
        problems = factory._finish()
    finally:
        unsubscribe_on_hub(factory._on_event)
    if problems:
        pytest.fail("geventio: " + "\n".join(problems), pytrace=False)


@pytest.fixture
def io_system(io_system_factory: IOSystemFactory) -> Any:
    """A one-worker IO system, shut down and checked after the test."""
    return io_system_factory("test", workers=1)
