"""Supervisor: status-check tasks and replace their IO system when one hangs.

A task shares its worker's loop with every other task there, and Python
cannot kill a thread. So when a supervised task stops answering, the
supervisor does not try to repair it: it shuts the whole IO system down
(bounded, abandoning a worker that will not stop) and builds a fresh one
with the user's ``setup``. A 1-worker IO system is one thread, so this is
cheap.

The supervisor's own loop is a task, ``_SupervisorTask``, on a 1-worker IO
system of its own: it waits with gevent sleeps on that hub and asks the
supervised tasks for their status from greenlets there, so nothing it does
blocks the thread that created it, and no supervised task can stall it.
"""

from __future__ import annotations

import atexit
import logging
import math
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from numbers import Real
from typing import Any

import gevent
import gevent.event
from greenlet import GreenletExit
from zope.interface import implementer

from . import _native
from ._iosystem import IOSystem
from ._mailbox import OneShot
from ._messages import StatusCheck
from ._proxy import ProxyActor
from ._task import Task
from .errors import AskTimeout, GeventIOError, ProxyStopped
from .events import SupervisorGaveUp, SupervisorRestarted, wanted
from .interfaces import ISupervisor

__all__ = ["Supervisor"]

log = logging.getLogger(__name__)

Setup = Callable[[IOSystem], "ProxyActor | Iterable[ProxyActor]"]
OnRestart = Callable[["Supervisor", str], object]

# Supervisors not yet stopped, stopped at interpreter exit before the IO
# systems' own exit hook runs (atexit runs hooks last-registered first, and
# this module registers after _iosystem). Otherwise a supervisor would see
# its tasks stop as their systems shut down, and build new ones.
_running: weakref.WeakSet[Supervisor] = weakref.WeakSet()

# Lifecycle states of a Supervisor.
_NEW, _STARTING, _RUNNING, _STOPPING, _STOPPED = (
    "new",
    "starting",
    "running",
    "stopping",
    "stopped",
)


def _seconds(what: str, value: object, *, infinite: bool = False) -> float:
    """Check that *value* is a positive number of seconds; return a float."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{what} must be a number of seconds, got {value!r}")
    seconds = float(value)
    # `not seconds > 0` also refuses NaN, which compares false to everything.
    if not seconds > 0:
        raise ValueError(f"{what} must be greater than 0, got {value!r}")
    if not infinite and math.isinf(seconds):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return seconds


def _count(what: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{what} must be at least {minimum}, got {value!r}")
    return value


class _RestartIntensity:
    """Erlang/OTP's restart intensity: at most *max_restarts* in *within* s.

    Only the supervisor's loop uses it, so it needs no lock.
    """

    def __init__(self, max_restarts: int, within: float) -> None:
        self.max_restarts = max_restarts
        self.within = within
        self._times: deque[float] = deque()

    def allow(self, now: float) -> bool:
        """Count a restart at *now*; False if it is one too many."""
        times = self._times
        times.append(now)
        while times and times[0] <= now - self.within:
            times.popleft()
        return len(times) <= self.max_restarts


class _Stopping(Exception):
    """The supervisor was stopped while it built an IO system."""


def _proxies_from(result: object, io: IOSystem) -> tuple[ProxyActor, ...]:
    """Turn what ``setup`` returned into a tuple of proxies, or raise."""
    if isinstance(result, ProxyActor):
        proxies: tuple[Any, ...] = (result,)
    elif isinstance(result, Iterable) and not isinstance(result, (str, bytes)):
        proxies = tuple(result)
    else:
        proxies = (result,)
    for proxy in proxies:
        if not isinstance(proxy, ProxyActor):
            raise TypeError(
                f"setup must return a ProxyActor or an iterable of them, got {result!r}"
            )
        if proxy._cell.io is not io:
            # Restarting could never fix such a task: it lives elsewhere.
            raise ValueError(
                f"setup returned {proxy!r}, which is not a task of the IO "
                f"system {io.name!r} it was given"
            )
    return proxies


@implementer(ISupervisor)
class Supervisor:
    """Status-check tasks and replace their IO system when a check fails.

    ``setup(io)`` starts the tasks to watch on a fresh
    :class:`~geventio.IOSystem` and
    returns their proxies (one, or an iterable). After :meth:`start`, every
    *interval* seconds the supervisor asks each proxy for a
    :class:`~geventio.StatusCheck`, all at once. A check unanswered within
    *timeout*, one answered with an exception, or a proxy that has stopped
    (whatever stopped it) fails the round; the supervisor then shuts that
    IO system down (bounded by *shutdown_timeout*, in the background, so a
    stuck worker does not delay recovery), builds a new one and calls
    ``setup`` on it again. More than *max_restarts* restarts within
    *within* seconds makes it give up: it stops everything, logs why at
    ERROR, and :attr:`gave_up` becomes true.

    The constructor only checks its arguments; nothing starts until
    :meth:`start` (or a ``with`` block). Construct it in any thread.

    Args:
        setup: called as ``setup(io)``: by :meth:`start` in the caller's
            thread, and for every restart on the supervisor's own hub (where
            it may block cooperatively, not otherwise). It returns a
            :class:`~geventio.ProxyActor` or an iterable of them, all
            tasks of *io*.
        workers: workers of each supervised IO system (None: one per CPU).
        name: name of the supervised IO system. Replacements are named
            ``name#1``, ``name#2``...; the supervisor's own system is
            ``name-supervisor``.
        interval: seconds between the starts of two rounds of checks.
        timeout: seconds each status check may take.
        max_restarts: restarts allowed within *within* seconds; one more
            makes the supervisor give up (0: give up at the first failure).
        within: the sliding window, in seconds, that *max_restarts*
            counts over (``math.inf`` for "ever").
        on_restart: called as ``on_restart(supervisor, reason)`` on the
            supervisor's hub after each successful restart; it must not
            block other than cooperatively, and an exception it raises is
            logged and otherwise ignored.
        shutdown_timeout: bound on shutting down one supervised IO system
            (default ``max(1.0, 2 * timeout)``). A stalled pure-Python loop
            is interrupted at half of it; a worker still running at the end
            is abandoned and reported in :meth:`status`.

    Raises:
        TypeError: an argument has the wrong type (the message names it).
        ValueError: an argument is out of range (the message names it).

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        setup: Setup,
        *,
        workers: int | None = 1,
        name: str = "supervised",
        interval: float = 1.0,
        timeout: float = 0.5,
        max_restarts: int = 3,
        within: float = 60.0,
        on_restart: OnRestart | None = None,
        shutdown_timeout: float | None = None,
    ) -> None:
        if not callable(setup):
            raise TypeError(f"setup must be callable, got {setup!r}")
        if workers is not None:
            _count("workers", workers, minimum=1)
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {name!r}")
        if not name:
            raise ValueError("name must not be empty")
        if on_restart is not None and not callable(on_restart):
            raise TypeError(f"on_restart must be callable or None, got {on_restart!r}")
        self.name = name
        self.interval = _seconds("interval", interval)
        self.timeout = _seconds("timeout", timeout)
        self.max_restarts = _count("max_restarts", max_restarts, minimum=0)
        self.within = _seconds("within", within, infinite=True)
        self.shutdown_timeout = (
            max(1.0, 2 * self.timeout)
            if shutdown_timeout is None
            else _seconds("shutdown_timeout", shutdown_timeout)
        )
        self._setup = setup
        self._workers = workers
        self._on_restart = on_restart
        self._intensity = _RestartIntensity(self.max_restarts, self.within)

        # Everything below is read by any thread and written by the
        # supervisor's loop, start() or stop(), all under this lock.
        self._lock = _native.allocate_lock()
        self._state = _NEW
        self._io: IOSystem | None = None
        self._proxies: tuple[ProxyActor, ...] = ()
        self._own: IOSystem | None = None
        # Supervised systems that may still have threads: each leaves the
        # list once a shutdown of it has returned.
        self._live: list[IOSystem] = []
        self._generation = 0
        self._checks = 0
        self._restarts = 0
        self._gave_up = False
        self._reason: str | None = None
        self._last_failure: str | None = None
        self._last_recovery: float | None = None
        self._abandoned: list[str] = []
        self._stopped = OneShot()

    # -- the public API ------------------------------------------------------

    @property
    def io(self) -> IOSystem | None:
        """The current supervised IO system (the last whose ``setup``
        returned), or None before :meth:`start`. Any thread."""
        return self._io

    @property
    def restarts(self) -> int:
        """How many restarts so far, failed ones included. Any thread.

        A restart is counted once it is over: when the new system's
        ``setup`` has returned (and :attr:`io` is that system) or raised.
        """
        return self._restarts

    @property
    def gave_up(self) -> bool:
        """True once the restart intensity was exceeded. Any thread."""
        return self._gave_up

    @property
    def reason(self) -> str | None:
        """Why the supervisor gave up, or None. Any thread."""
        return self._reason

    @property
    def is_running(self) -> bool:
        """True from :meth:`start` until it stops or gives up. Any thread."""
        return self._state == _RUNNING and not self._gave_up

    def status(self) -> dict[str, Any]:
        """A snapshot of the supervisor's state; any thread; never blocks.

        Keys: ``name``, ``state`` (new, starting, running, stopping,
        stopped), ``io`` (the current system's name), ``proxies`` (how many
        are watched), ``checks`` (completed rounds of checks), ``restarts``,
        ``gave_up``, ``reason``, ``last_failure`` (why the last restart
        happened), ``last_recovery`` (seconds from the start of the failed
        round to the new system's ``setup`` returning) and ``abandoned``
        (names of supervised workers that did not stop in time).
        """
        with self._lock:
            return {
                "name": self.name,
                "state": self._state,
                "io": None if self._io is None else self._io.name,
                "proxies": len(self._proxies),
                "checks": self._checks,
                "restarts": self._restarts,
                "gave_up": self._gave_up,
                "reason": self._reason,
                "last_failure": self._last_failure,
                "last_recovery": self._last_recovery,
                "abandoned": list(self._abandoned),
            }

    def start(self) -> Supervisor:
        """Build the first IO system, run ``setup`` on it and start checking.

        Callable once, from any thread. It blocks the calling thread (only
        the calling greenlet on a hub) while the IO systems' threads start
        and ``setup`` runs, never longer: the checks run on the
        supervisor's own worker.

        Returns:
            this supervisor.

        Raises:
            GeventIOError: it was already started.
            Exception: whatever ``setup`` raised, or TypeError/ValueError
                when it returned something other than proxies of tasks of
                the IO system it was given. Nothing is left running then,
                and :meth:`start` may be called again.
        """
        with self._lock:
            state = self._state
            if state == _NEW:
                self._state = _STARTING
        if state != _NEW:
            done = "started" if self._generation or self._own is not None else "stopped"
            raise GeventIOError(f"{self!r} was already {done}; a supervisor runs once")
        _running.add(self)
        try:
            io, proxies = self._build(retire=self._retire)
            own = IOSystem(f"{self.name}-supervisor", workers=1)
        except _Stopping:
            self._stop_everything(None)
            return self
        except BaseException:
            for built in self._live_snapshot():
                self._retire(built)
            with self._lock:
                self._state = _NEW
                self._generation = 0
            _running.discard(self)
            raise
        with self._lock:
            self._io, self._proxies, self._own = io, proxies, own
            stopped_meanwhile = self._state != _STARTING
            if not stopped_meanwhile:
                self._state = _RUNNING
        if stopped_meanwhile:
            self._stop_everything(None)
        else:
            _SupervisorTask.start(own, self)
            log.debug("%r started", self)
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop checking, then shut down every IO system it created.

        Idempotent; callable from any thread or hub. It shuts down the
        supervisor's own system, then each supervised one, each bounded by
        *timeout* (None: the ``shutdown_timeout`` given to the constructor), so
        it blocks the calling thread (only the calling greenlet on a hub) for
        at most about *timeout* per IO system. A later call waits for the first
        one to finish. Called from the supervisor's own hub (``on_restart``, a
        restart's ``setup``) or from a task of a supervised system, it only
        starts the stopping, in a helper thread, and returns at once.

        Raises:
            TypeError, ValueError: *timeout* is not a positive number.
        """
        if timeout is not None:
            timeout = _seconds("timeout", timeout)
        with self._lock:
            state = self._state
            if state == _NEW:
                self._state = _STOPPED
                self._stopped.set()
                return
            if state in (_STARTING, _RUNNING):
                self._state = _STOPPING
        if state == _STARTING:
            # start() sees the new state when it finishes, and stops.
            if not self._on_our_thread():
                self._stopped.wait(None)
            return
        if state == _RUNNING:
            if self._on_our_thread():
                _native.start_new_thread(self._stop_everything, (timeout,))
            else:
                self._stop_everything(timeout)
            return
        if not self._on_our_thread():
            self._stopped.wait(None)

    def __enter__(self) -> Supervisor:
        return self.start() if self._state == _NEW else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        with self._lock:
            state = "gave up" if self._gave_up else self._state
            io = None if self._io is None else self._io.name
            restarts = self._restarts
        return f"<Supervisor {self.name!r} {state}, io={io!r}, {restarts} restart(s)>"

    # -- building and retiring IO systems (any thread) ----------------------

    def _build(
        self, retire: Callable[[IOSystem], object]
    ) -> tuple[IOSystem, tuple[ProxyActor, ...]]:
        """Make the next supervised system and run ``setup`` on it.

        On failure the new system is handed to *retire* and the error
        raised; :class:`_Stopping` if the supervisor stopped meanwhile.
        """
        with self._lock:
            generation = self._generation
            self._generation += 1
        name = self.name if not generation else f"{self.name}#{generation}"
        io = IOSystem(name, workers=self._workers)
        with self._lock:
            # Registered before anything can switch greenlets, so that
            # stop() shuts down every system that exists by the time it
            # looks.
            stopping = self._state in (_STOPPING, _STOPPED)
            if not stopping:
                self._live.append(io)
        if stopping:
            io.shutdown(timeout=self.shutdown_timeout)
            raise _Stopping
        try:
            return io, _proxies_from(self._setup(io), io)
        except BaseException:
            retire(io)
            raise

    def _retire(self, io: IOSystem, timeout: float | None = None) -> None:
        """Shut *io* down, bounded, and note the workers it abandoned."""
        stuck = io.shutdown(
            timeout=self.shutdown_timeout if timeout is None else timeout
        )
        with self._lock:
            if io in self._live:
                self._live.remove(io)
            self._abandoned.extend(
                w.name for w in stuck if w.name not in self._abandoned
            )

    def _live_snapshot(self) -> list[IOSystem]:
        with self._lock:
            return list(self._live)

    def _on_our_thread(self) -> bool:
        """True on a worker of a system this supervisor would shut down,
        where waiting for that shutdown could never end."""
        ident = _native.get_ident()
        with self._lock:
            systems = [*self._live, *([self._own] if self._own else [])]
        return any(w.ident == ident for io in systems for w in io.workers)

    def _stop_everything(self, timeout: float | None) -> None:
        """Shut down the supervisor's own system, then the supervised ones.

        Runs in the thread that called stop(), or in a helper thread.
        """
        try:
            own = self._own
            if own is not None:
                # First, so that no restart begins while the rest stops:
                # this kills the supervisor's loop and its greenlets.
                own.shutdown(
                    timeout=self.shutdown_timeout if timeout is None else timeout
                )
            for io in self._live_snapshot():
                self._retire(io, timeout)
        finally:
            with self._lock:
                self._state = _STOPPED
                gave_up, reason = self._gave_up, self._reason
            _running.discard(self)
            log.debug("%r stopped", self)
            if gave_up and own is not None and wanted():
                own._service.publish(SupervisorGaveUp(self, reason))
            self._stopped.set()

    # -- the supervisor's loop (its own hub) --------------------------------

    def _loop(self, task: _SupervisorTask) -> None:
        """Check every *interval*; recover from failed rounds. Never returns
        until the supervisor gives up or is stopped (which kills it)."""
        now = _native.monotonic
        due = now() + self.interval
        while True:
            delay = due - now()
            if delay > 0:
                gevent.sleep(delay)
            started = now()
            failure = self._check_round(task)
            with self._lock:
                self._checks += 1
            if failure is None:
                # Keep the rhythm, but never try to catch up on missed rounds.
                due = max(due + self.interval, now())
                continue
            if not self._recover(task, failure, started):
                return
            due = now() + self.interval

    def _check_round(self, task: _SupervisorTask) -> str | None:
        """Check every proxy at once; describe the failures, or None.

        Each ask blocks only its own greenlet, so N proxies cost one
        timeout, not N.
        """
        proxies = self._proxies
        if not proxies:
            return None
        results: list[str | None] = [None] * len(proxies)
        pending = [len(proxies)]
        done = gevent.event.Event()

        def check(index: int, proxy: ProxyActor) -> None:
            try:
                results[index] = self._check_one(proxy)
            finally:
                pending[0] -= 1
                if not pending[0]:
                    done.set()

        for index, proxy in enumerate(proxies):
            task.spawn_or_exit(check, index, proxy)
        done.wait()
        failures = [result for result in results if result is not None]
        if not failures:
            return None
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        return failures[0] + more

    def _check_one(self, proxy: ProxyActor) -> str | None:
        if not proxy.is_alive:
            return f"{proxy!r} has stopped"
        try:
            proxy.ask(StatusCheck(), timeout=self.timeout)
        except AskTimeout:
            return f"status check of {proxy!r} not answered within {self.timeout:g} s"
        except ProxyStopped:
            return f"{proxy!r} stopped during its status check"
        except Exception as exc:
            return f"status check of {proxy!r} failed: {exc!r}"
        return None

    def _recover(self, task: _SupervisorTask, failure: str, started: float) -> bool:
        """Replace the IO system; False if the supervisor gave up or stops."""
        old = self._io
        log.warning(
            "supervisor %r: %s; replacing IO system %r",
            self.name,
            failure,
            None if old is None else old.name,
        )
        reason = failure
        while True:
            with self._lock:
                self._last_failure = reason
                if self._state != _RUNNING:
                    return False
            if not self._intensity.allow(_native.monotonic()):
                within = (
                    "ever" if math.isinf(self.within) else f"within {self.within:g} s"
                )
                self._give_up(
                    f"more than {self.max_restarts} restart(s) {within}; "
                    f"the last failure: {reason}"
                )
                return False
            # Counted once the attempt is over, together with its outcome,
            # so that a reader never sees a restart without its new system.
            restarts = self._restarts + 1
            with self._lock:
                self._proxies = ()
            if old is not None and old in self._live_snapshot():
                # In the background: a stuck worker takes the whole
                # shutdown timeout, and the new system need not wait.
                task.spawn_or_exit(self._retire_quietly, old)
                old = None
            try:
                io, proxies = self._build(
                    retire=lambda io: task.spawn_or_exit(self._retire_quietly, io)
                )
            except _Stopping:
                return False
            except Exception as exc:
                with self._lock:
                    self._restarts = restarts
                log.error(
                    "supervisor %r: setup failed on restart %d; retrying in %g s",
                    self.name,
                    restarts,
                    self.interval,
                    exc_info=exc,
                )
                reason = f"setup failed on restart {restarts}: {exc!r}"
                gevent.sleep(self.interval)
                continue
            with self._lock:
                self._io, self._proxies = io, proxies
                self._restarts = restarts
                self._last_recovery = _native.monotonic() - started
            log.info(
                "supervisor %r: restart %d done, now running IO system %r",
                self.name,
                restarts,
                io.name,
            )
            self._announce_restart(reason, restarts)
            return True

    def _retire_quietly(self, io: IOSystem) -> None:
        try:
            self._retire(io)
        except Exception:
            log.exception("supervisor %r: shutting down %r failed", self.name, io)

    def _announce_restart(self, reason: str, restarts: int) -> None:
        own = self._own
        if own is not None and wanted():
            own._service.publish(SupervisorRestarted(self, reason, restarts))
        if self._on_restart is not None:
            try:
                self._on_restart(self, reason)
            except Exception:
                log.exception("supervisor %r: on_restart raised", self.name)

    def _give_up(self, why: str) -> None:
        with self._lock:
            self._gave_up = True
            self._reason = why
            self._state = _STOPPING
        log.error("supervisor %r gives up: %s; stopping everything", self.name, why)
        # In a helper thread: shutting down this very system from its own
        # worker could not wait for that worker to stop.
        _native.start_new_thread(self._stop_everything, (None,))


class _SupervisorTask(Task):
    """The loop of a :class:`~geventio.Supervisor`, on its own worker."""

    def __init__(self, supervisor: Supervisor) -> None:
        super().__init__()
        self._supervisor = supervisor

    def run(self) -> None:
        self._supervisor._loop(self)

    def spawn_or_exit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Spawn ``fn(*args)``, or end the calling greenlet quietly if the
        task is already unbinding (its greenlets are about to be killed,
        and one may run a little before its turn comes)."""
        if not self.is_bound:
            raise GreenletExit
        self.spawn(fn, *args)

    def on_failure(self, exc: BaseException) -> None:
        # A bug in the loop: already logged with its traceback. Without a
        # loop nobody watches the tasks, so say so and stop everything.
        supervisor = self._supervisor
        with supervisor._lock:
            if supervisor._state != _RUNNING:
                return
        supervisor._give_up(f"the supervisor's own loop failed: {exc!r}")


@atexit.register
def _stop_at_exit() -> None:
    for supervisor in list(_running):
        supervisor.stop(timeout=1.0)
