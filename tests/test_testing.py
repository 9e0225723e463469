"""geventio.testing: the probe, the waits and the pytest plugin."""

import textwrap

import gevent
import pytest
from helpers import CALLERS, call_from

from geventio import GeventIOError, StatusCheck, Task, Terminated, _native
from geventio.testing import (
    Probe,
    never_blocks_hub,
    scaled,
    wait_handled,
    wait_idle,
    wait_until,
)


class Echo(Task):
    def receive(self, message):
        self.sender.tell(message)


class Forward(Task):
    """Tells every message on to the collaborator it was built with."""

    def __init__(self, to):
        super().__init__()
        self.to = to

    def receive(self, message):
        self.to.tell(message)


@pytest.mark.parametrize("caller", CALLERS)
def test_a_probe_receives_what_is_told_to_it_from_any_caller(make_io, caller):
    probe = Probe()

    call_from(caller, lambda: probe.tell("hi"), io=make_io("caller"))

    assert probe.expect("hi") == "hi"


def test_a_probe_as_sender_gets_the_replies_and_can_reply_itself(io):
    probe = Probe()
    proxy = Echo.start(io)

    proxy.tell("ping", sender=probe)
    assert probe.expect(lambda m: m == "ping") == "ping"
    assert probe.last_sender is proxy
    probe.reply("pong")  # back to the task, which echoes it to the probe

    assert probe.expect("pong") == "pong"


def test_a_probe_as_a_collaborator_receives_in_order(io):
    probe = Probe()
    proxy = Forward.start(io, probe)

    for i in range(10):
        proxy.tell(i)

    assert probe.receive(10) == list(range(10))
    probe.expect_no_message(0.05)


def test_probe_expectations_fail_with_what_came_instead(io):
    probe = Probe()

    with pytest.raises(AssertionError, match=r"expected 'x' within .* got nothing"):
        probe.expect("x", timeout=0.01)
    probe.tell("y")
    with pytest.raises(AssertionError, match="expected 'x', got 'y'"):
        probe.expect("x")
    probe.tell("z")
    with pytest.raises(AssertionError, match="expected no message, got 'z'"):
        probe.expect_no_message(0.01)
    with pytest.raises(AssertionError, match="expected 2 messages"):
        probe.receive(2, timeout=0.01)
    with pytest.raises(GeventIOError, match="probe"):
        probe.ask("?")


def test_a_probe_watches_a_task_until_it_ends(io):
    probe = Probe()
    proxy = Echo.start(io)

    probe.watch(proxy)
    proxy.stop()

    terminated = probe.expect(lambda m: isinstance(m, Terminated))
    assert terminated.proxy is proxy and terminated.reason == "stopped"


def test_timeouts_scale_with_the_environment(monkeypatch):
    monkeypatch.setenv("GEVENTIO_TEST_TIMEOUT_SCALE", "3")
    assert scaled(2) == 6
    monkeypatch.setenv("GEVENTIO_TEST_TIMEOUT_SCALE", "zero")
    with pytest.raises(ValueError, match="GEVENTIO_TEST_TIMEOUT_SCALE"):
        scaled(1)


def test_wait_handled_and_wait_idle_wait_for_the_hub(io):
    gate = _native.allocate_lock()
    gate.acquire()

    class Slow(Task):
        def receive(self, message):
            while not gate.acquire(False):
                gevent.sleep(0.001)  # cooperative, so the checks run
            gate.release()

    proxy = Slow.start(io)
    for i in range(3):
        proxy.tell(i)
    with pytest.raises(AssertionError, match="to be idle"):
        wait_idle(io, timeout=0.05)
    gate.release()

    wait_handled(proxy, 3)
    wait_idle(io)
    assert proxy.ask(StatusCheck(), timeout=5)["handled"] == 3


def test_wait_until_fails_with_what_it_waited_for():
    with pytest.raises(AssertionError, match="waiting for the moon"):
        wait_until(lambda: False, timeout=0.01, what="the moon")


def test_never_blocks_hub_passes_cooperative_code_and_catches_blocking(io):
    class Checked(Task):
        def receive(self, message):
            try:
                with never_blocks_hub(0.02):
                    if message == "block":
                        _native.sleep(0.1)  # holds the hub
                    else:
                        gevent.sleep(0.001)
                self.sender.tell("ok")
            except AssertionError as exc:
                self.sender.tell(f"caught: {exc}")

    proxy = Checked.start(io)

    assert proxy.ask("cooperate", timeout=5) == "ok"
    assert proxy.ask("block", timeout=5).startswith(
        "caught: the hub was kept from running"
    )


# -- the plugin's fixtures, run in a pytester subprocess so the ones that must
# fail can be seen failing ---------------------------------------------------

_HEADER = """
import os
if os.environ.get("GEVENTIO_TEST_MONKEY") == "1":
    from gevent import monkey
    monkey.patch_all()
import geventio
from geventio import Task, _native

class Echo(Task):
    def receive(self, message):
        self.sender.tell(message)
"""


def _run(pytester, body):
    pytester.makepyfile(test_inner=_HEADER + textwrap.dedent(body))
    return pytester.runpytest_subprocess("-p", "geventio.testing.plugin", "-q")


@pytest.mark.timeout(120)
def test_the_io_system_fixture_works_and_cleans_up(pytester):
    result = _run(
        pytester,
        """
        def test_ok(io_system, io_system_factory):
            assert Echo.start(io_system).ask(1, timeout=5) == 1
            other = io_system_factory("other", workers=2)
            assert Echo.start(other).ask(2, timeout=5) == 2
        """,
    )

    result.assert_outcomes(passed=1)


@pytest.mark.timeout(120)
def test_an_unexpected_task_failure_fails_the_test(pytester):
    result = _run(
        pytester,
        """
        class Boom(Task):
            def receive(self, message):
                raise ValueError("boom")

        def test_fails(io_system):
            proxy = Boom.start(io_system)
            proxy.tell("x")
            assert proxy.join(5)

        def test_expected(io_system_factory):
            io_system_factory.expect_failures()
            proxy = Boom.start(io_system_factory())
            proxy.tell("x")
            assert proxy.join(5)
            assert len(io_system_factory.failures) == 1
        """,
    )

    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*unexpected task failures*ValueError('boom')*"])


@pytest.mark.timeout(120)
def test_a_hook_that_raises_fails_the_test_unless_expected(pytester):
    result = _run(
        pytester,
        """
        class BadUnbind(Task):
            def on_unbind(self):
                raise KeyError("unbind")

        def test_unbind(io_system):
            BadUnbind.start(io_system).stop()

        def test_on_stopped(io_system):
            proxy = Echo.start(io_system)
            proxy.on_stopped(lambda terminated: 1 / 0)
            proxy.stop()
            assert proxy.join(5)

        def test_expected(io_system_factory):
            io_system_factory.expect_failures()
            proxy = BadUnbind.start(io_system_factory())
            proxy.stop()
            assert proxy.join(5)
        """,
    )

    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*unexpected task failures: on_unbind of <ProxyActor*KeyError('unbind')*",
            "*unexpected task failures: on_stopped of <ProxyActor*ZeroDivisionError*",
        ],
        consecutive=False,
    )


@pytest.mark.timeout(120)
def test_a_leaked_thread_fails_the_test(pytester):
    result = _run(
        pytester,
        """
        def test_leaks(io_system):
            lock = _native.allocate_lock()
            lock.acquire()
            _native.start_new_thread(lock.acquire, ())  # never released
        """,
    )

    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*threads left running*"])


@pytest.mark.timeout(120)
def test_a_leaked_descriptor_fails_the_test(pytester):
    result = _run(
        pytester,
        """
        import os
        kept = []

        def test_leaks(io_system):
            kept.append(os.open(os.devnull, os.O_RDONLY))
        """,
    )

    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*file descriptors leaked*"])


@pytest.mark.timeout(120)
def test_an_expected_message_that_never_comes_fails_the_test(pytester):
    result = _run(
        pytester,
        """
        from geventio.testing import Probe

        def test_waits(io_system):
            Probe().expect("never", timeout=0.05)
        """,
    )

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*expected 'never' within*got nothing*"])


def test_never_blocks_hub_passes_a_quick_body_that_never_switches(io):
    class Quick(Task):
        def receive(self, message):
            with never_blocks_hub(0.05):
                total = sum(range(100))
            self.sender.tell(total)

    assert Quick.start(io).ask("go", timeout=5) == 4950


@pytest.mark.timeout(120)
def test_a_test_that_makes_its_own_main_hub_is_not_a_descriptor_leak(pytester):
    result = _run(
        pytester,
        """
        import gevent

        def test_uses_the_main_hub(io_system):
            proxy = Echo.start(io_system)
            g = gevent.spawn(proxy.ask, 1, timeout=5)
            g.join(5)
            assert g.get() == 1
        """,
    )

    result.assert_outcomes(passed=1)


def test_the_helpers_refuse_bad_arguments_naming_them(io):
    from geventio.testing import never_blocks_hub, scaled, wait_handled, wait_idle

    probe = Probe()
    cases = [
        (lambda: scaled("x"), TypeError, "seconds must be a number"),
        (lambda: scaled(float("nan")), ValueError, "seconds must be a non-negative"),
        (lambda: wait_until(lambda: True, timeout=-1), ValueError, "timeout"),
        (lambda: wait_until(None), TypeError, "predicate must be callable"),
        (lambda: wait_idle(None), TypeError, "target must be an IOSystem"),
        (lambda: wait_handled(None, 1), TypeError, "expected a task's ProxyActor"),
        (lambda: wait_handled(Echo.start(io), -1), ValueError, "count"),
        (lambda: probe.receive("x"), TypeError, "count must be an int"),
        (lambda: probe.receive(-1), ValueError, "count must not be negative"),
        (lambda: probe.expect_no_message("x"), TypeError, "timeout"),
        (lambda: never_blocks_hub(0).__enter__(), ValueError, "max_blocking_time"),
    ]
    for call, error, words in cases:
        with pytest.raises(error, match=words):
            call()
