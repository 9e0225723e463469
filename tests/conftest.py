"""Shared fixtures. With GEVENTIO_TEST_MONKEY=1 (``tox -e monkey``) the whole
suite runs in a process that called ``gevent.monkey.patch_all()`` before
importing anything else, as a legacy gevent service does."""

import os

if os.environ.get("GEVENTIO_TEST_MONKEY") == "1":
    from gevent import monkey

    monkey.patch_all()

import gc
import logging

import pytest
from helpers import open_fds, os_threads, wait_until

import geventio

MONKEY = os.environ.get("GEVENTIO_TEST_MONKEY") == "1"


@pytest.fixture
def make_io():
    """Factory for IO systems, each shut down (and checked) after the test."""
    systems = []

    def make(name="test", workers=1):
        io = geventio.IOSystem(name, workers=workers)
        systems.append(io)
        return io

    yield make
    for io in systems:
        assert io.shutdown(timeout=10) == [], f"{io!r} did not stop"


@pytest.fixture
def io(make_io):
    """A one-worker IO system, shut down after the test."""
    return make_io("test", workers=1)


@pytest.fixture
def io2(make_io):
    """A two-worker IO system, shut down after the test."""
    return make_io("test2", workers=2)


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """Every test leaves the process's OS thread count as it found it."""
    before = os_threads()
    yield
    gc.collect()
    wait_until(
        lambda: os_threads() <= before, timeout=10, what="worker threads to exit"
    )


@pytest.fixture
def task_errors(caplog):
    """The ERROR records logged by geventio during the test."""
    caplog.set_level(logging.DEBUG, logger="geventio")

    def errors():
        return [
            r
            for r in caplog.records
            if r.name.startswith("geventio") and r.levelno >= logging.ERROR
        ]

    return errors


__all__ = ["MONKEY", "open_fds"]
