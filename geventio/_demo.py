"""``python -m geventio demo``: an HTTP server, its clients, and a stall.

``server`` (1 worker) runs :class:`_ServerTask`, a gevent WSGI server on
127.0.0.1. ``clients`` (1 worker) is built by a :class:`~geventio.Supervisor`
whose ``setup`` starts N :class:`_ClientTask` tasks polling the server over
HTTP, cooperatively on their shared hub. Part-way through, one client spins
the CPU without yielding: the blocking monitor names it, the supervisor's
status check goes unanswered, a new IO system (``clients#1``) replaces the
stalled one and the new clients carry on. The main thread, a plain thread,
prints a status line per interval and a summary with the restarts and the
recovery time (from the stall to the new system's first good request).
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from http import client as http_client
from typing import Any, TextIO

import gevent
import gevent.event
import gevent.pool
import gevent.socket
from gevent.pywsgi import WSGIServer

from geventio import (
    GeventIOError,
    IOSystem,
    ProxyActor,
    StallInterrupted,
    StatusCheck,
    Supervisor,
    Task,
    _native,
)

__all__ = ["run_demo"]

_HOST = "127.0.0.1"
_ADDRESS = "address"  # server: reply with the (host, port) it listens on
_SPIN = "spin"  # client: hold the worker's loop in a pure-Python loop

# Client i polls _PATHS[i % 3] every _POLL_INTERVALS[i % 5] seconds: the
# paces differ so that requests interleave on the shared hub, and /slow
# shows one client waiting without holding up the others.
_PATHS = ("/", "/", "/slow")
_POLL_INTERVALS = (0.05, 0.08, 0.13, 0.21, 0.34)
_SLOW_DELAY = 0.02  # how long /slow sleeps, cooperatively
_LATENCY_WINDOW = 1000  # latency figures cover this many recent requests
# The stall: which client spins, when (as a fraction of the run), and for
# at most how long if nothing interrupts it.
_SPINNER = 1
_STALL_AT = 0.25
_SPIN_LIMIT = 5.0
# Bounds on every wait, so that a wedged worker ends the demo with a report
# instead of a hang. A status line gives up on a stalled worker quickly.
_HTTP_TIMEOUT = 5.0
_ASK_TIMEOUT = 2.0
_STATUS_TIMEOUT = 0.25
_RECOVERY_WAIT = 10.0
_SHUTDOWN_TIMEOUT = 5.0
# A tick this close past the deadline still counts as on it, so that
# --duration 5 --interval 1 prints five lines despite float rounding.
_TICK_SLACK = 1e-6


class _Connection(http_client.HTTPConnection):
    """The standard library's HTTP client over a gevent socket, which
    yields to the calling hub while it waits: cooperative without
    ``gevent.monkey`` patching the whole process."""

    def connect(self) -> None:
        self.sock = gevent.socket.create_connection(
            (self.host, self.port),
            self.timeout,
            self.source_address,  # type: ignore[attr-defined]  # not in stubs
        )
        # Small requests on a kept-alive connection would otherwise wait on
        # Nagle's algorithm; the standard library sets this too.
        self.sock.setsockopt(gevent.socket.IPPROTO_TCP, gevent.socket.TCP_NODELAY, 1)


class _Tally:
    """One client's results over every generation of its task.

    Written by the client task on its worker, read by the main thread; the
    lock keeps each update and each snapshot whole.
    """

    def __init__(self) -> None:
        self._lock = _native.allocate_lock()
        self.requests = self.errors = 0
        self.last_error = self.server_worker = ""
        self.latencies: deque[float] = deque(maxlen=_LATENCY_WINDOW)

    def succeeded(self, seconds: float, server_worker: str) -> None:
        with self._lock:
            self.requests += 1
            self.latencies.append(seconds * 1000)
            self.server_worker = server_worker

    def failed(self, error: str) -> None:
        with self._lock:
            self.errors += 1
            self.last_error = error

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            recent = list(self.latencies)
            return {
                "requests": self.requests,
                "errors": self.errors,
                "last_error": self.last_error,
                "server_worker": self.server_worker,
                "p50_ms": statistics.median(recent) if recent else None,
                "max_ms": max(recent, default=None),
            }


class _ServerTask(Task):
    """A gevent WSGI server on its worker's hub.

    ``GET /`` answers at once, ``GET /slow`` after a short cooperative
    sleep, both with JSON naming the serving worker. Answers
    :data:`_ADDRESS` with the ``(host, port)`` it listens on.
    """

    def __init__(self, host: str, port: int) -> None:
        super().__init__()
        self._address = (host, port)
        self._server: WSGIServer | None = None
        self._listening = gevent.event.Event()

    def run(self) -> None:
        # A bounded pool, rather than a bare greenlet per connection, is
        # what lets stop() kill handlers still running at the end.
        pool = gevent.pool.Pool(100)
        self._server = WSGIServer(self._address, self._app, spawn=pool, log=None)
        self._server.start()
        self._listening.set()

    def receive(self, message: Any) -> None:
        if message == _ADDRESS and self.sender is not None:
            # Maybe handled before run() has bound the socket. If binding
            # fails the task fails, which fails this ask with ProxyStopped.
            self._listening.wait()
            assert self._server is not None
            self.sender.tell(self._server.address[:2])

    def on_unbind(self) -> None:
        if self._server is not None:
            self._server.stop(timeout=1.0)

    def _app(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path not in ("/", "/slow"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        if path == "/slow":
            gevent.sleep(_SLOW_DELAY)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"worker": self.worker.name}).encode()]


class _ClientTask(Task):
    """Polls the demo server from its ``run()``, recording into a tally.

    Its status adds the tally to the default report; :data:`_SPIN` makes
    it stall its worker.
    """

    def __init__(
        self, demo: _Demo, generation: int, tally: _Tally, path: str, interval: float
    ) -> None:
        super().__init__()
        self._demo = demo
        self._generation = generation
        self._tally = tally
        self._path = path
        self._interval = interval
        self._connection: _Connection | None = None

    def run(self) -> None:
        assert self._demo.address is not None
        self._connection = _Connection(*self._demo.address, timeout=_HTTP_TIMEOUT)
        # Ends when the IO system's shutdown kills this greenlet.
        while True:
            self._poll_once(self._connection)
            gevent.sleep(self._interval)

    def receive(self, message: Any) -> None:
        if message == _SPIN:
            self._spin()

    def status(self) -> dict[str, Any]:
        return {**super().status(), **self._tally.snapshot()}

    def on_unbind(self) -> None:
        if self._connection is not None:
            self._connection.close()

    def _poll_once(self, connection: _Connection) -> None:
        started = time.monotonic()
        try:
            connection.request("GET", self._path)
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                raise ValueError(f"HTTP status {response.status} for {self._path}")
            worker = str(json.loads(body)["worker"])
        except Exception as exc:
            # Not BaseException: the GreenletExit of unbinding must end the
            # loop. A connection that failed half way is in an unknown
            # state; closing it makes the next request reconnect.
            connection.close()
            self._tally.failed(f"{type(exc).__name__}: {exc}")
            return
        now = time.monotonic()
        self._tally.succeeded(now - started, worker)
        self._demo.request_succeeded(self._generation, now)

    def _spin(self) -> None:
        """Hold the loop in pure Python, as CPU-bound code would, until
        :data:`_SPIN_LIMIT` or until the IO system's shutdown interrupts
        it (which it can, for pure-Python code only)."""
        started = self._demo.stall_started = time.monotonic()
        try:
            while time.monotonic() - started < _SPIN_LIMIT:
                pass
        except StallInterrupted:
            how = "until the shutdown interrupted it"
        else:
            how = "until its own time limit"
        self._demo.stall_ended = f"{time.monotonic() - started:.2f} s, {how}"


class _Demo:
    """The main thread's side of the demo: each step of it, and its output.

    The client tasks and the supervisor's hub write a few fields too
    (``clients``, ``stall_*``, ``recovered*``), each a single reference
    replaced whole, which the main thread only reads.
    """

    def __init__(self, out: TextIO, clients: int) -> None:
        self.out = out
        self._say_lock = threading.Lock()
        self.server_io: IOSystem | None = None
        self.server: ProxyActor | None = None
        self.address: tuple[str, int] | None = None
        self.supervisor: Supervisor | None = None
        self.tallies = [_Tally() for _ in range(clients)]
        self.client_systems: list[IOSystem] = []
        self.clients: list[ProxyActor] = []
        self.spinner = _SPINNER % clients
        self.stall_started: float | None = None
        self.stall_ended: str | None = None
        self.recovered_at: float | None = None
        self.recovered = threading.Event()
        self.problems: list[str] = []

    def say(self, line: str) -> None:
        # Any thread: the supervisor's hub reports restarts as they happen.
        with self._say_lock:
            self.out.write(line + "\n")
            self.out.flush()

    def start_server(self, port: int) -> None:
        self.server_io = IOSystem("server", workers=1)
        self.server = _ServerTask.start(self.server_io, _HOST, port)
        try:
            self.address = self.server.ask(_ADDRESS, timeout=_ASK_TIMEOUT)
        except GeventIOError as exc:
            raise _DemoFailed(
                f"the server did not start listening on {_HOST}:{port} "
                f"({exc}); its error, if any, is logged above"
            ) from exc
        self.say(f"server listening on http://{_HOST}:{self.address[1]}/")

    def start_clients(self) -> None:
        sup = Supervisor(self.setup_clients, name="clients", on_restart=self.restarted)
        self.supervisor = sup.start()
        self.say(
            f"clients supervised: status checks every {sup.interval:g} s, "
            f"answered within {sup.timeout:g} s"
        )
        for index in range(len(self.tallies)):
            path, interval = _pace(index)
            self.say(f"client-{index}: GET {path} every {interval:g} s")

    def setup_clients(self, io: IOSystem) -> list[ProxyActor]:
        """The supervisor's ``setup``: one client task per tally."""
        generation = len(self.client_systems)
        self.client_systems.append(io)
        self.clients = [
            _ClientTask.start(io, self, generation, tally, *_pace(index))
            for index, tally in enumerate(self.tallies)
        ]
        return self.clients

    def restarted(self, supervisor: Supervisor, reason: str) -> None:
        """The supervisor's ``on_restart``, on the supervisor's hub."""
        self.say(
            f"supervisor: restart {supervisor.restarts}, the clients now run on "
            f"IO system {self.client_systems[-1].name!r}; the reason: {reason}"
        )

    def request_succeeded(self, generation: int, when: float) -> None:
        """A client of *generation* got an answer (on the clients' hub)."""
        if generation and self.recovered_at is None:
            self.recovered_at = when
            self.recovered.set()

    def run_until(
        self, deadline: float, interval: float, started: float, stall: float | None
    ) -> None:
        """Print a status line every *interval* seconds until *deadline*,
        and start the stall at time *stall*.

        Tick k is due at ``started + k * interval`` (computed, not summed,
        so rounding never adds up), and a tick on the deadline still
        prints. Waits on a native event nothing sets: an OS wait.
        """
        ticker = threading.Event()
        tick = 1
        while True:
            tick_due = started + tick * interval
            last = tick_due > deadline + _TICK_SLACK
            due = deadline if last else tick_due
            if stall is not None and stall <= due:
                ticker.wait(max(0.0, stall - time.monotonic()))
                proxy = self.clients[self.spinner]
                self.say(
                    f"t={time.monotonic() - started:.2f}s  telling "
                    f"client-{self.spinner} to spin the CPU without yielding "
                    f"(up to {_SPIN_LIMIT:g} s): {proxy!r}"
                )
                proxy.tell(_SPIN)
                stall = None
                continue
            ticker.wait(max(0.0, due - time.monotonic()))
            if last:
                return
            self.say(f"t={_seconds(tick * interval)}s  {self.status_line()}")
            tick += 1

    def status_line(self) -> str:
        parts = []
        for index, proxy in enumerate(self.clients):
            try:
                report = proxy.ask(StatusCheck(), timeout=_STATUS_TIMEOUT)
            except GeventIOError as exc:
                # They share one worker: if one cannot answer, none can.
                parts.append(
                    f"client-{index}: no answer ({type(exc).__name__}), "
                    "nor from the others on its worker"
                )
                break
            parts.append(
                f"client-{index}: {report['requests']} req, {report['errors']} "
                f"err, p50 {_ms(report['p50_ms'])}"
            )
        return f"[{self.client_systems[-1].name}] " + " | ".join(parts)

    def wait_for_recovery(self) -> None:
        """After a stall, give the clients time to come back, bounded."""
        if self.stall_started is None or self.recovered.is_set():
            return
        self.say("waiting for the clients to recover...")
        if not self.recovered.wait(_RECOVERY_WAIT):
            self.problems.append(f"no recovery within {_RECOVERY_WAIT:g} s")

    def shutdown(self) -> None:
        """Stop the clients (their supervisor), then the server: clients
        first, so that no request fails for a vanished server."""
        if self.supervisor is not None:
            self.supervisor.stop(timeout=_SHUTDOWN_TIMEOUT)
            abandoned = self.supervisor.status()["abandoned"]
            if abandoned:
                self.problems.append(f"workers abandoned: {', '.join(abandoned)}")
        if self.server_io is not None and self.server_io.shutdown(_SHUTDOWN_TIMEOUT):
            self.problems.append("the server's worker did not stop")

    def summarize(self, elapsed: float) -> None:
        self.say("summary:")
        reports = [tally.snapshot() for tally in self.tallies]
        for index, report in enumerate(reports):
            self.say(
                f"  client-{index}: {report['requests']} requests, "
                f"{report['errors']} errors, latency p50 {_ms(report['p50_ms'])}, "
                f"max {_ms(report['max_ms'])}, "
                f"served by {report['server_worker'] or '-'}"
            )
            if report["errors"]:
                self.problems.append(
                    f"client-{index} had {report['errors']} failed requests, "
                    f"the last: {report['last_error']}"
                )
        requests = sum(report["requests"] for report in reports)
        errors = sum(report["errors"] for report in reports)
        self.say(f"  total: {requests} requests, {errors} errors")
        self.summarize_supervision()
        systems = [io for io in (self.server_io, *self.client_systems) if io]
        dead = ", ".join(f"{io.name} {io.dead_letters}" for io in systems)
        self.say(f"  dead letters: {dead or '-'}")
        # The longest loop stall shows which hub, if any, was ever blocked.
        for io in systems:
            for stats in io.stats():
                self.say(
                    f"  {stats['worker']}: {stats['delivered']} messages "
                    f"delivered, longest loop stall {_ms(stats['max_stall'] * 1000)}"
                )
        self.say(f"  elapsed: {elapsed:.2f} s")

    def summarize_supervision(self) -> None:
        if self.supervisor is None:
            return
        sup, status = self.supervisor, self.supervisor.status()
        why = f" ({status['last_failure']})" if status["last_failure"] else ""
        self.say(f"  restarts: {status['restarts']}{why}")
        expected = 0 if self.stall_started is None else 1
        if status["gave_up"]:
            self.problems.append(f"the supervisor gave up: {status['reason']}")
        elif status["restarts"] != expected:
            self.problems.append(f"{status['restarts']} restarts, not {expected}")
        if self.stall_started is None:
            self.say("  recovery: - (no stall)")
            return
        self.say(f"  stall: client-{self.spinner} spun {self.stall_ended or '?'}")
        if self.recovered_at is None:
            self.say("  recovery: - (no request succeeded on a new IO system)")
            return
        recovery = self.recovered_at - self.stall_started
        bound = sup.interval + sup.timeout + 0.5
        self.say(
            f"  recovery: {recovery:.3f} s from the stall to the first successful "
            f"request on {self.client_systems[1].name} "
            f"(bound: interval + timeout + 0.5 s = {bound:g} s)"
        )
        if recovery >= bound:
            self.problems.append(f"recovery took {recovery:.3f} s, over {bound:g} s")


class _DemoFailed(Exception):
    """A step of the demo failed; the message says which and why."""


def run_demo(
    *,
    duration: float = 5.0,
    clients: int = 3,
    port: int = 0,
    interval: float = 1.0,
    stall: bool = True,
    out: TextIO | None = None,
) -> int:
    """Run the demo and return the process exit status.

    Call it from a plain thread (normally the main thread), never from a
    gevent hub: it blocks the calling thread for about *duration* seconds,
    plus the bounded time that starting, recovering and shutting down
    take. Arguments are not checked here; :mod:`geventio._cli` does that.

    Args:
        duration: seconds to run the clients for.
        clients: how many client tasks.
        port: the server's port on 127.0.0.1; 0 picks a free one.
        interval: seconds between status lines.
        stall: make one client spin the CPU part-way through.
        out: where to print; standard output by default.

    Returns:
        0 when every request succeeded, a stall was recovered from in time
        with one restart, and everything shut down in time; 1 otherwise,
        with the reasons printed; 130 when interrupted (the demo still
        shuts down and prints its summary).
    """
    demo = _Demo(sys.stdout if out is None else out, clients)
    started = time.monotonic()
    interrupted = False

    try:
        demo.start_server(port)
        demo.start_clients()
        begun = time.monotonic()
        stall_at = begun + duration * _STALL_AT if stall else None
        demo.run_until(begun + duration, interval, begun, stall_at)
        demo.wait_for_recovery()
    except KeyboardInterrupt:
        interrupted = True
    except _DemoFailed as exc:
        demo.problems.append(str(exc))
    finally:
        demo.shutdown()

    demo.summarize(time.monotonic() - started)
    if interrupted:
        demo.say("interrupted")
        return 130
    if demo.problems:
        demo.say("FAILED:")
        for problem in demo.problems:
            demo.say(f"  {problem}")
        return 1
    demo.say("OK")
    return 0


def _pace(index: int) -> tuple[str, float]:
    """The path client *index* polls, and how often."""
    return _PATHS[index % len(_PATHS)], _POLL_INTERVALS[index % len(_POLL_INTERVALS)]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _seconds(value: float) -> str:
    # One decimal at least ("t=1.0s"), up to three when the interval needs
    # them ("t=0.25s"), never float noise ("t=0.30000000000000004s").
    text = f"{value:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text
