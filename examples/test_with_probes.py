"""Testing tasks with geventio.testing: probes and waits, never sleeps.

Enable the fixtures with ``-p geventio.testing.plugin`` on the pytest
command line, or in your ``conftest.py``::

    pytest_plugins = ["geventio.testing.plugin"]

(An installed geventio also registers the plugin through pytest's entry
points.) Run it with::

    pytest -p geventio.testing.plugin examples/test_with_probes.py
"""

import time

import gevent
import pytest

import geventio
from geventio.testing import Probe, never_blocks_hub, wait_handled, wait_idle


class Greeter(geventio.Task):
    """The task under test: greets, and keeps a log of whom it greeted."""

    def __init__(self, log):
        super().__init__()
        self.log = log

    def receive(self, message):
        if message == "explode":
            raise RuntimeError("asked to explode")
        self.log.tell(f"greeting {message}")
        if self.sender is not None:
            self.sender.tell(f"Hello, {message}!")


class Relay(geventio.Task):
    """Passes questions to a helper and its answers back to the asker."""

    def __init__(self, helper):
        super().__init__()
        self.helper = helper
        self.asker = None

    def receive(self, message):
        if self.sender is self.helper:
            self.asker.tell(message)  # the helper's answer
        else:
            self.asker = self.sender
            self.helper.tell(message)  # the sender is this task


def slow_lookup(key):
    """Stands for a blocking library call."""
    time.sleep(0.01)
    return key.upper()


class Fetcher(geventio.Task):
    """Looks keys up without holding its worker's hub."""

    def receive(self, key):
        # Fails (and so fails the ask) if the lookup held the hub > 50 ms.
        with never_blocks_hub(max_blocking_time=0.05):
            value = self.run_blocking(slow_lookup, key)
        self.sender.tell(value)


def test_a_probe_as_sender_and_as_collaborator(io_system):
    log, client = Probe("log"), Probe("client")
    greeter = Greeter.start(io_system, log)

    greeter.tell("world", sender=client)

    log.expect("greeting world")
    assert client.expect(lambda m: m.startswith("Hello")) == "Hello, world!"
    log.expect_no_message()


def test_receive_several_then_wait_until_handled(io_system):
    log = Probe("log")
    greeter = Greeter.start(io_system, log)

    for name in ("a", "b", "c"):
        greeter.tell(name)
    wait_handled(greeter, 3)

    assert log.receive(3) == ["greeting a", "greeting b", "greeting c"]


def test_a_probe_can_reply_to_the_task_that_told_it(io_system):
    helper, client = Probe("helper"), Probe("client")
    relay = Relay.start(io_system, helper)

    relay.tell("what is 6 x 7?", sender=client)
    helper.expect("what is 6 x 7?")
    helper.reply(42)  # to the last sender: the relay

    client.expect(42)


def test_watching_a_task_that_fails(io_system_factory):
    io_system_factory.expect_failures()  # this test makes a task fail on purpose
    io = io_system_factory("watched", workers=2)
    watcher = Probe("watcher")
    greeter = Greeter.start(io, Probe())
    watcher.watch(greeter)

    with pytest.raises(RuntimeError, match="asked to explode"):
        greeter.ask("explode", timeout=5)

    terminated = watcher.expect(lambda m: isinstance(m, geventio.Terminated))
    assert terminated.reason == "failed"
    assert isinstance(terminated.error, RuntimeError)


def test_wait_idle_then_check_what_happened(io_system):
    log = Probe("log")
    greeter = Greeter.start(io_system, log)

    greeter.tell("quietly")
    wait_idle(io_system)

    assert log.receive(1) == ["greeting quietly"]


def test_a_task_that_offloads_its_blocking_call(io_system):
    fetcher = Fetcher.start(io_system)

    assert fetcher.ask("key", timeout=5) == "KEY"


def test_never_blocks_hub_catches_a_stall():
    with pytest.raises(AssertionError), never_blocks_hub(max_blocking_time=0.01):
        gevent.sleep(0)  # a switch is fine...
        busy_until = gevent.get_hub().loop.now() + 0.05
        while gevent.get_hub().loop.now() < busy_until:  # ...a busy loop is not
            gevent.get_hub().loop.update_now()
