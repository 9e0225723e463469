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

MONKEY = os.environ.get("GEVENTIO_TEST_MONKEY") == "1"


pytest_plugins = ["pytester"]


@pytest.fixture
def make_io(io_system_factory):
    """Factory for IO systems (the plugin's), each shut down and checked
    for failed tasks, stuck workers and leaks after the test."""
    return io_system_factory


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
def task_errors(caplog, io_system_factory):
    """The ERROR records logged by geventio during the test (which expects
    tasks to fail)."""
    io_system_factory.expect_failures()
    caplog.set_level(logging.DEBUG, logger="geventio")

    def errors():
        return [
            r
            for r in caplog.records
            if r.name.startswith("geventio") and r.levelno >= logging.ERROR
        ]

    return errors


__all__ = ["MONKEY", "open_fds"]
