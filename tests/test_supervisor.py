"""Supervisor: status checks, restarts, restart intensity and stopping."""

import logging
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import gevent.event
import pytest
import zope.event
from helpers import WAIT, Recorder, run_in_thread

import geventio
from geventio import (
    GeventIOError,
    StallInterrupted,
    Supervisor,
    Task,
    _native,
)
from geventio._mailbox import current_inbox
from geventio._supervisor import _RestartIntensity
from geventio.events import (
    ISupervisorGaveUp,
    ISupervisorRestarted,
    SupervisorGaveUp,
    SupervisorRestarted,
)

# Short enough that the file runs in seconds; the timeout still leaves a
# loaded machine ample time to answer a healthy check.
INTERVAL = 0.02
TIMEOUT = 0.5


class Watched(Task):
    """A supervised task: its status hook records its generation.

    ``"spin"`` holds the worker's loop in pure Python until the test
    releases it or a shutdown interrupts it; ``"hang"`` blocks it in a
    native lock wait; ``"wait"`` hangs the handler cooperatively;
    ``"die"`` unbinds the task.
    """

    def __init__(self, generation, checked, notes, gate=None):
        super().__init__()
        self.generation = generation
        self.checked = checked
        self.notes = notes
        self.gate = gate
        self.released = False

    def status(self):
        self.checked.append(self.generation)
        return super().status()

    def on_failure(self, exc):
        # Seen here rather than by a try/except around the busy loop: on
        # Python 3.13 an asynchronous exception that lands while the loop
        # is in a C call can skip the handler of the very frame it hits.
        if isinstance(exc, StallInterrupted):
            self.notes.append(exc)

    def receive(self, message):
        if message == "spin":
            deadline = _native.monotonic() + WAIT
            while not self.released and _native.monotonic() < deadline:
                pass
        elif message == "hang":
            self.notes.append("hanging")
            self.gate.acquire()
        elif message == "wait":
            gevent.event.Event().wait()
        elif message == "die":
            self.unbind()


class Generations:
    """A ``setup`` that starts one Watched per call and keeps everything."""

    def __init__(self, tasks=1, fail_on=(), gate=None):
        self.tasks = tasks
        self.fail_on = set(fail_on)
        self.gate = gate
        self.checked = Recorder()
        self.notes = Recorder()
        self.systems = []
        self.proxies = []

    def __call__(self, io):
        generation = len(self.systems)
        self.systems.append(io)
        if generation in self.fail_on:
            raise RuntimeError(f"setup of generation {generation} fails")
        proxies = [
            Watched.start(io, generation, self.checked, self.notes, self.gate)
            for _ in range(self.tasks)
        ]
        self.proxies.append(proxies)
        return proxies[0] if self.tasks == 1 else proxies

    def checks_of(self, generation, n):
        """Wait until tasks of *generation* answered *n* status checks."""
        self.checked.wait(
            lambda items: items.count(generation) >= n,
            what=f"{n} checks of generation {generation}",
        )


class _Capture(logging.Handler):
    def __init__(self, recorder):
        super().__init__(logging.WARNING)
        self.recorder = recorder

    def emit(self, record):
        self.recorder.append(record)


@pytest.fixture
def logged():
    """Every WARNING or worse logged under ``geventio``, to wait on."""
    records = Recorder()
    handler = _Capture(records)
    logger = logging.getLogger("geventio")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


@pytest.fixture
def events():
    """The supervisor events delivered through zope.event, with whether
    each was delivered on a worker hub."""
    seen = Recorder()

    def subscriber(event):
        if isinstance(event, (SupervisorRestarted, SupervisorGaveUp)):
            seen.append((event, current_inbox() is not None))

    zope.event.subscribers.append(subscriber)
    yield seen
    zope.event.subscribers.remove(subscriber)


# -- restarts -----------------------------------------------------------------


def test_a_stalled_task_leads_to_exactly_one_restart():
    setup = Generations()
    restarted = Recorder()

    with Supervisor(
        setup,
        interval=INTERVAL,
        timeout=TIMEOUT,
        on_restart=lambda sup, reason: restarted.append(reason),
    ) as sup:
        first = sup.io
        setup.proxies[0][0].tell("spin")

        [reason] = restarted.wait_for(1)
        setup.checks_of(1, 10)  # the new system, checked again and again

        assert sup.restarts == 1
        assert sup.io is setup.systems[1] and sup.io.is_running
        assert sup.io.name == "supervised#1"
        assert "Watched" in reason and f"not answered within {TIMEOUT:g} s" in reason
        # The old system's shutdown interrupted the busy loop.
        assert isinstance(setup.notes.wait_for(1)[0], StallInterrupted)

    assert not first.is_running and not sup.io.is_running
    status = sup.status()
    assert status["restarts"] == 1 and status["abandoned"] == []
    assert status["last_failure"] == reason
    # From sending the unanswered checks to the new system's setup.
    assert TIMEOUT <= status["last_recovery"] < TIMEOUT + 1.0


def test_a_healthy_system_is_never_restarted():
    setup = Generations(tasks=2)

    with Supervisor(setup, interval=0.01, timeout=TIMEOUT) as sup:
        setup.checks_of(0, 2 * 50)  # 50 rounds of two checks each

        status = sup.status()

    assert status["restarts"] == 0 and sup.restarts == 0
    assert status["checks"] >= 49
    assert status["last_failure"] is None and status["last_recovery"] is None
    assert len(setup.systems) == 1


def test_a_proxy_that_stopped_counts_as_a_failure():
    setup = Generations()
    restarted = Recorder()

    with Supervisor(
        setup,
        interval=INTERVAL,
        timeout=TIMEOUT,
        on_restart=lambda sup, reason: restarted.append(reason),
    ) as sup:
        setup.proxies[0][0].stop()
        [reason] = restarted.wait_for(1)

        assert "stopped" in reason and "Watched" in reason
        assert sup.restarts == 1
        assert not setup.systems[0].is_running


def test_a_task_that_ends_on_its_own_is_restarted_too():
    setup = Generations()
    restarted = Recorder()

    with Supervisor(
        setup,
        interval=INTERVAL,
        timeout=TIMEOUT,
        on_restart=lambda sup, reason: restarted.append(reason),
    ):
        setup.proxies[0][0].tell("die")

        assert "has stopped" in restarted.wait_for(1)[0]


def test_a_status_hook_that_raises_fails_the_check():
    restarted = Recorder()

    class Broken(Task):
        def status(self):
            raise ValueError("cannot say")

    with Supervisor(
        Broken.start,
        interval=INTERVAL,
        timeout=TIMEOUT,
        max_restarts=10,
        on_restart=lambda sup, reason: restarted.append(reason),
    ):
        reason = restarted.wait_for(1)[0]

    assert "failed: ValueError('cannot say')" in reason


def test_proxies_are_checked_concurrently_so_many_cost_one_timeout():
    setup = Generations(tasks=4)
    restarted = Recorder()

    with Supervisor(
        setup,
        interval=INTERVAL,
        timeout=TIMEOUT,
        on_restart=lambda sup, reason: restarted.append(reason),
    ) as sup:
        for proxy in setup.proxies[0]:
            proxy.tell("wait")  # each handler hangs, cooperatively
        [reason] = restarted.wait_for(1)

        recovery = sup.status()["last_recovery"]

    assert "(and 3 more)" in reason
    # Asked one after another, the four checks would take 4 timeouts.
    assert TIMEOUT <= recovery < 2 * TIMEOUT


@pytest.mark.timeout(60)
def test_a_worker_stuck_in_a_native_wait_is_abandoned_without_holding_up_recovery():
    gate = _native.allocate_lock()
    gate.acquire()
    setup = Generations(gate=gate)
    restarted = Recorder()
    sup = Supervisor(
        setup,
        interval=INTERVAL,
        timeout=TIMEOUT,
        shutdown_timeout=5.0,
        on_restart=lambda sup, reason: restarted.append(reason),
    ).start()
    try:
        setup.proxies[0][0].tell("hang")
        restarted.wait_for(1)
        setup.checks_of(1, 10)

        # The old system's shutdown (up to 5 s, on the supervisor's hub)
        # was still waiting for the stuck worker all along.
        stuck = setup.systems[0].workers[0]
        assert stuck.is_running
        sup.stop(timeout=0.2)

        assert sup.status()["abandoned"] == ["supervised-worker-0"]
        assert stuck.stats()["abandoned"] is True
        assert not sup.io.is_running
    finally:
        sup.stop()
        gate.release()  # the abandoned worker then finishes on its own
    assert stuck._wait_stopped(WAIT)


# -- setup --------------------------------------------------------------------


def test_setup_that_raises_on_a_restart_counts_as_a_restart_and_is_retried(logged):
    setup = Generations(fail_on={1})
    restarted = Recorder()

    with Supervisor(
        setup,
        interval=INTERVAL,
        timeout=TIMEOUT,
        on_restart=lambda sup, reason: restarted.append(reason),
    ) as sup:
        setup.proxies[0][0].tell("die")
        [reason] = restarted.wait_for(1)
        setup.checks_of(2, 3)

        assert sup.restarts == 2 and not sup.gave_up
        assert sup.io is setup.systems[2]
        assert reason == "setup failed on restart 1: RuntimeError(" + (
            "'setup of generation 1 fails')"
        )
    [failure] = [r for r in logged.items if r.levelno >= logging.ERROR]
    assert "setup failed on restart 1" in failure.getMessage()
    assert failure.levelno == logging.ERROR and failure.exc_info is not None
    assert not setup.systems[1].is_running


def test_setup_that_raises_at_start_raises_to_the_caller_and_leaves_nothing():
    setup = Generations(fail_on={0})
    sup = Supervisor(setup)

    with pytest.raises(RuntimeError, match="setup of generation 0 fails"):
        sup.start()

    assert not setup.systems[0].is_running
    assert sup.io is None and sup.status()["state"] == "new"
    # Fixed, it may be started again.
    setup.fail_on.clear()
    with sup:
        assert sup.io is setup.systems[1] and sup.io.is_running


def test_setup_must_return_proxies_of_tasks_of_its_io_system(make_io):
    other = make_io("other")
    cases = [
        (lambda io: None, TypeError, "setup must return a ProxyActor or an iterable"),
        (lambda io: [Task.start(io), "x"], TypeError, "got \\[<ProxyActor"),
        (lambda io: Task.start(other), ValueError, "not a task of the IO system"),
    ]

    for returns, error, complaint in cases:
        with pytest.raises(error, match=complaint):
            Supervisor(returns).start()


def test_setup_may_return_an_iterable_of_proxies():
    def setup(io):
        return (Task.start(io) for _ in range(3))

    with Supervisor(setup) as sup:
        assert sup.status()["proxies"] == 3


# -- giving up ----------------------------------------------------------------


def test_exceeding_the_restart_intensity_gives_up_and_stops_everything(logged, events):
    systems = []

    class Mortal(Task):
        def run(self):
            self.unbind()  # every generation dies at once

    def setup(io):
        systems.append(io)
        return Mortal.start(io)

    sup = Supervisor(setup, interval=INTERVAL, max_restarts=2, within=60)
    sup.start()

    seen = events.wait(
        lambda items: any(ISupervisorGaveUp.providedBy(e) for e, _ in items)
    )
    sup.stop()

    assert sup.gave_up and sup.restarts == 2
    assert sup.reason.startswith("more than 2 restart(s) within 60 s; ")
    assert "has stopped" in sup.reason
    assert sup.status()["state"] == "stopped"
    assert len(systems) == 3
    assert not any(io.is_running for io in systems)
    # Events: two restarts, then the give-up, all delivered off the hubs.
    kinds = [(type(e).__name__, getattr(e, "restarts", None)) for e, _ in seen]
    assert kinds == [
        ("SupervisorRestarted", 1),
        ("SupervisorRestarted", 2),
        ("SupervisorGaveUp", None),
    ]
    assert all(ISupervisorRestarted.providedBy(e) for e, _ in seen[:2])
    assert seen[-1][0].supervisor is sup and seen[-1][0].reason == sup.reason
    assert not any(on_hub for _, on_hub in seen)
    [error] = [r for r in logged.items if r.levelno >= logging.ERROR]
    assert "gives up" in error.getMessage() and sup.reason in error.getMessage()


def test_with_no_restarts_allowed_the_first_failure_gives_up(events):
    setup = Generations()
    sup = Supervisor(setup, interval=INTERVAL, max_restarts=0).start()

    setup.proxies[0][0].stop()
    events.wait(lambda items: any(ISupervisorGaveUp.providedBy(e) for e, _ in items))

    assert sup.gave_up and sup.restarts == 0
    assert sup.reason.startswith("more than 0 restart(s) within 60 s")
    assert not setup.systems[0].is_running
    sup.stop()


def test_restart_intensity_counts_restarts_in_a_sliding_window():
    intensity = _RestartIntensity(max_restarts=2, within=10.0)

    assert intensity.allow(0.0) and intensity.allow(1.0)
    assert not intensity.allow(2.0)  # a third within 10 s
    assert intensity.allow(12.5)  # 0.0, 1.0 and 2.0 have left the window
    assert intensity.allow(13.0)
    assert not intensity.allow(14.0)

    never = _RestartIntensity(max_restarts=1, within=math.inf)
    assert never.allow(0.0) and not never.allow(1e9)


# -- starting and stopping ----------------------------------------------------


def test_start_returns_at_once_with_the_system_running():
    setup = Generations()
    sup = Supervisor(setup, name="svc")

    assert sup.io is None and sup.restarts == 0 and not sup.gave_up
    assert sup.start() is sup
    try:
        assert sup.io.name == "svc" and sup.io.is_running
        assert sup.status()["state"] == "running" and sup.is_running
        assert "svc" in repr(sup) and "running" in repr(sup)
        with pytest.raises(GeventIOError, match="already started"):
            sup.start()
    finally:
        sup.stop()


def test_stop_stops_everything_it_created_and_is_idempotent():
    setup = Generations()
    sup = Supervisor(setup, interval=INTERVAL).start()
    setup.checks_of(0, 3)

    assert run_in_thread(lambda: sup.stop(timeout=WAIT)) is None
    sup.stop()
    sup.stop(timeout=1)

    assert not setup.systems[0].is_running
    assert not setup.proxies[0][0].is_alive
    assert sup.status()["state"] == "stopped" and not sup.is_running
    assert sup.reason is None and not sup.gave_up


def test_stop_before_start_does_nothing_and_start_after_stop_is_refused():
    sup = Supervisor(Task.start)

    sup.stop()

    with pytest.raises(GeventIOError, match="already stopped"):
        sup.start()


def test_stop_from_on_restart_on_the_supervisors_own_hub_does_not_deadlock():
    setup = Generations()
    called = Recorder()

    def on_restart(sup, reason):
        sup.stop()  # returns at once: a helper thread does the stopping
        called.append(reason)

    sup = Supervisor(setup, interval=INTERVAL, on_restart=on_restart).start()
    setup.proxies[0][0].stop()
    called.wait_for(1)
    sup.stop()

    assert sup.status()["state"] == "stopped"
    assert not any(io.is_running for io in setup.systems)


def test_an_on_restart_that_raises_is_logged_and_supervision_goes_on(logged):
    setup = Generations()

    def on_restart(sup, reason):
        raise KeyError("oops")

    with Supervisor(setup, interval=INTERVAL, on_restart=on_restart) as sup:
        setup.proxies[0][0].stop()
        setup.checks_of(1, 3)

        assert sup.restarts == 1 and sup.is_running
    records = [r for r in logged.items if "on_restart raised" in r.getMessage()]
    assert records and records[0].exc_info[0] is KeyError


# -- arguments ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "complaint"),
    [
        ({"setup": None}, TypeError, "setup must be callable, got None"),
        ({"workers": 0}, ValueError, "workers must be at least 1, got 0"),
        ({"workers": "2"}, TypeError, "workers must be an int, got '2'"),
        ({"workers": True}, TypeError, "workers must be an int, got True"),
        ({"name": ""}, ValueError, "name must not be empty"),
        ({"name": 3}, TypeError, "name must be a str, got 3"),
        ({"interval": 0}, ValueError, "interval must be greater than 0, got 0"),
        ({"interval": "1"}, TypeError, "interval must be a number of seconds"),
        ({"interval": math.inf}, ValueError, "interval must be finite"),
        ({"interval": math.nan}, ValueError, "interval must be greater than 0"),
        ({"timeout": -1}, ValueError, "timeout must be greater than 0, got -1"),
        ({"timeout": None}, TypeError, "timeout must be a number of seconds"),
        ({"max_restarts": -1}, ValueError, "max_restarts must be at least 0"),
        ({"max_restarts": 1.5}, TypeError, "max_restarts must be an int, got 1.5"),
        ({"within": 0}, ValueError, "within must be greater than 0, got 0"),
        ({"on_restart": 5}, TypeError, "on_restart must be callable or None"),
        ({"shutdown_timeout": 0}, ValueError, "shutdown_timeout must be greater"),
    ],
)
def test_bad_arguments_are_refused_in_the_callers_thread_naming_them(
    kwargs, error, complaint
):
    arguments = {"setup": Task.start, **kwargs}
    setup = arguments.pop("setup")

    with pytest.raises(error, match=complaint):
        Supervisor(setup, **arguments)


def test_stop_refuses_a_bad_timeout():
    sup = Supervisor(Task.start)

    with pytest.raises(ValueError, match="timeout must be greater than 0"):
        sup.stop(timeout=0)


def test_defaults_follow_the_contract():
    sup = Supervisor(Task.start)

    assert (sup.name, sup.interval, sup.timeout) == ("supervised", 1.0, 0.5)
    assert (sup.max_restarts, sup.within, sup.shutdown_timeout) == (3, 60.0, 1.0)


# -- the guide --------------------------------------------------------------

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "supervision.rst"


@pytest.mark.timeout(120)
@pytest.mark.skipif(not GUIDE.exists(), reason="the docs are not in this tree")
def test_the_examples_of_the_supervision_guide_run_as_shown():
    blocks = re.findall(
        r"\.\. code-block:: python\n\n((?:   .*\n|\n)+)", GUIDE.read_text()
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(geventio.__file__))

    outputs = []
    for block in blocks:
        code = "\n".join(line[3:] for line in block.splitlines())
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        assert result.returncode == 0, code + result.stderr
        outputs.append(result.stdout)

    assert len(outputs) == 3
    assert outputs[0] == "{'alive': True, 'handled': 0}\n"
    assert "now running on crunch#1\n" in outputs[1]
    assert outputs[2].startswith("more than 2 restart(s) within 10 s; ")
