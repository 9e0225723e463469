"""``python -m geventio demo``: an HTTP server and its clients, all as tasks.

Two IO systems run side by side in one process:

* ``server`` (1 worker) runs one :class:`_ServerTask`, a gevent WSGI server
  on 127.0.0.1 started from the task's ``run()``, so its accept loop and
  request handlers are greenlets on that worker's hub.
* ``clients`` (1 worker) runs N :class:`_ClientTask` tasks that poll the
  server over real HTTP, each at its own pace, cooperatively on their
  shared hub.

The main thread is a plain thread that never touches a hub: it learns the
server's port by asking the server task, then once per interval asks every
client task for its status through its proxy and prints one line. At the
end it drains the clients, shuts both systems down (clients first, so no
request is cut off by a vanishing server) and prints a summary.
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
from typing import Any, Protocol, TextIO

import gevent
import gevent.event
import gevent.pool
import gevent.socket
from gevent.pywsgi import WSGIServer

from geventio import GeventIOError, IOSystem, ProxyActor, StatusCheck, Task

__all__ = ["run_demo"]

_HOST = "127.0.0.1"

# Messages understood by the demo's tasks, besides StatusCheck.
_ADDRESS = "address"  # server: reply with the (host, port) it listens on
_FINISH = "finish"  # client: stop polling, then reply with a final status

# Client i polls _PATHS[i % 3] every _POLL_INTERVALS[i % 5] seconds: the
# paces differ so that requests interleave on the shared hub instead of
# marching in step, and /slow shows one client waiting without holding up
# the others.
_PATHS = ("/", "/", "/slow")
_POLL_INTERVALS = (0.05, 0.08, 0.13, 0.21, 0.34)
# How long /slow holds its request, sleeping cooperatively so that the
# server worker keeps serving the other clients meanwhile.
_SLOW_DELAY = 0.02
# Latency percentiles come from this many most recent requests per client.
_LATENCY_WINDOW = 1000
# Bounds on every wait, so that a wedged worker ends the demo with a report
# instead of a hang.
_HTTP_TIMEOUT = 5.0
_ASK_TIMEOUT = 2.0
_FINISH_TIMEOUT = 5.0
_SHUTDOWN_TIMEOUT = 5.0
# A status tick this close past the deadline still counts as on it, so that
# --duration 5 --interval 1 prints five lines despite float rounding.
_TICK_SLACK = 1e-6


# -- HTTP clients --------------------------------------------------------


class _HTTPClient(Protocol):
    """What a client task needs from an HTTP client: GET and close."""

    def get(self, path: str) -> tuple[int, bytes]: ...

    def close(self) -> None: ...


class _CooperativeHTTPConnection(http_client.HTTPConnection):
    """The standard library's HTTP client over a gevent socket.

    Only the connection's socket changes: a gevent socket made on the
    calling hub yields to that hub while it waits, so the demo stays
    cooperative without ``gevent.monkey`` patching the whole process.
    """

    def connect(self) -> None:
        self.sock = gevent.socket.create_connection(
            (self.host, self.port),
            self.timeout,
            # Set by HTTPConnection.__init__ but missing from its stubs.
            self.source_address,  # type: ignore[attr-defined]
        )
        # Small requests on a kept-alive connection would otherwise wait on
        # Nagle's algorithm; the standard library sets this too.
        self.sock.setsockopt(gevent.socket.IPPROTO_TCP, gevent.socket.TCP_NODELAY, 1)


class _StdlibClient:
    """:mod:`http.client` on a gevent socket, one kept-alive connection."""

    def __init__(self, host: str, port: int) -> None:
        self._connection = _CooperativeHTTPConnection(host, port, timeout=_HTTP_TIMEOUT)

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            self._connection.request("GET", path)
            response = self._connection.getresponse()
            return response.status, response.read()
        except BaseException:
            # A request that failed half way leaves the connection in an
            # unknown state; closing it makes the next request reconnect.
            self._connection.close()
            raise

    def close(self) -> None:
        self._connection.close()


class _GeventHTTPClient:
    """geventhttpclient, a gevent-native HTTP client, with one connection."""

    def __init__(self, host: str, port: int) -> None:
        from geventhttpclient import HTTPClient

        self._client = HTTPClient(
            host,
            port,
            concurrency=1,
            connection_timeout=_HTTP_TIMEOUT,
            network_timeout=_HTTP_TIMEOUT,
        )

    def get(self, path: str) -> tuple[int, bytes]:
        response = self._client.get(path)
        try:
            # bytes(): older releases return a bytearray.
            return response.status_code, bytes(response.read())
        finally:
            response.release()

    def close(self) -> None:
        self._client.close()


def _choose_http_client(choice: str) -> tuple[str, Callable[[str, int], _HTTPClient]]:
    """Return a description and a factory for the HTTP client *choice*.

    Args:
        choice: ``"geventhttpclient"``, ``"stdlib"``, or ``"auto"`` for the
            first when it can be imported and the second otherwise.

    Returns:
        ``(description, factory)``; ``factory(host, port)`` makes a client.

    Raises:
        ImportError: *choice* is ``"geventhttpclient"`` and it is missing.
    """
    if choice in ("auto", "geventhttpclient"):
        try:
            import geventhttpclient
        except ImportError:
            if choice == "geventhttpclient":
                raise
        else:
            version = getattr(geventhttpclient, "__version__", "")
            return f"geventhttpclient {version}".strip(), _GeventHTTPClient
    return "http.client over gevent sockets", _StdlibClient


# -- tasks ---------------------------------------------------------------


class _ServerTask(Task):
    """Runs a gevent WSGI server on its worker's hub.

    ``GET /`` answers at once and ``GET /slow`` after a short cooperative
    sleep; both return JSON with the number of requests served so far and
    the name of the worker serving them. Answers :data:`_ADDRESS` with the
    ``(host, port)`` it listens on; its status adds ``served``.
    """

    def __init__(self, host: str, port: int) -> None:
        super().__init__()
        self._host = host
        self._port = port
        self._server: WSGIServer | None = None
        self._listening = gevent.event.Event()
        # Only ever touched on this task's hub (the WSGI handlers run there
        # too), so a plain int needs no lock.
        self._served = 0

    def run(self) -> None:
        server = WSGIServer(
            (self._host, self._port),
            self._app,
            # A bounded pool, rather than a bare greenlet per connection,
            # is what lets stop() kill handlers still running at the end.
            spawn=gevent.pool.Pool(100),
            log=None,
        )
        server.start()
        self._server = server
        self._listening.set()

    def receive(self, message: Any) -> None:
        if message == _ADDRESS and self.sender is not None:
            # The ask may be handled before run() has bound the socket. If
            # binding fails, run() raises and the task is unbound, which
            # fails the ask with ProxyStopped.
            self._listening.wait()
            assert self._server is not None
            self.sender.tell(self._server.address[:2])

    def status(self) -> dict[str, Any]:
        return {**super().status(), "served": self._served}

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
        self._served += 1
        body = json.dumps({"count": self._served, "worker": self.worker.name})
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body.encode()]


class _ClientTask(Task):
    """Polls the demo server from its ``run()`` and reports how it went.

    Its status (the answer to :class:`~geventio.StatusCheck`) adds request
    and error counts and latencies in milliseconds to the default report.
    :data:`_FINISH` stops the polling and is answered, once the last
    request is done, with the final status.
    """

    def __init__(
        self,
        address: tuple[str, int],
        path: str,
        interval: float,
        make_client: Callable[[str, int], _HTTPClient],
    ) -> None:
        super().__init__()
        self._address = address
        self._path = path
        self._interval = interval
        self._make_client = make_client
        self._client: _HTTPClient | None = None
        # gevent events, set and waited on only on this task's hub.
        self._finish = gevent.event.Event()
        self._idle = gevent.event.Event()
        self._requests = 0
        self._errors = 0
        self._last_error = ""
        self._latencies: deque[float] = deque(maxlen=_LATENCY_WINDOW)
        self._total_latency = 0.0
        self._max_latency = 0.0
        self._server_worker = ""

    def run(self) -> None:
        try:
            self._client = self._make_client(*self._address)
            while not self._finish.is_set():
                self._poll_once()
                # Waiting on the event rather than sleeping lets _FINISH
                # end the loop at once instead of after a full interval.
                self._finish.wait(self._interval)
        finally:
            self._idle.set()

    def receive(self, message: Any) -> None:
        if message == _FINISH and self.sender is not None:
            self._finish.set()
            self._idle.wait(_FINISH_TIMEOUT)
            self.sender.tell(self.status())

    def status(self) -> dict[str, Any]:
        recent = self._latencies
        done = self._requests
        return {
            **super().status(),
            "requests": done,
            "errors": self._errors,
            "last_error": self._last_error,
            "last_ms": recent[-1] * 1000 if recent else None,
            "p50_ms": statistics.median(recent) * 1000 if recent else None,
            "mean_ms": self._total_latency / done * 1000 if done else None,
            "max_ms": self._max_latency * 1000 if done else None,
            "server_worker": self._server_worker,
        }

    def on_unbind(self) -> None:
        if self._client is not None:
            self._client.close()

    def _poll_once(self) -> None:
        assert self._client is not None
        started = time.perf_counter()
        try:
            status, body = self._client.get(self._path)
            if status != 200:
                raise ValueError(f"HTTP status {status} for {self._path}")
            reply = json.loads(body)
        except Exception as exc:
            # Not BaseException: the GreenletExit that unbinding throws in
            # must still end this loop.
            self._errors += 1
            self._last_error = f"{type(exc).__name__}: {exc}"
            return
        latency = time.perf_counter() - started

        self._requests += 1
        self._latencies.append(latency)
        self._total_latency += latency
        self._max_latency = max(self._max_latency, latency)
        self._server_worker = str(reply.get("worker", ""))


# -- the main thread -----------------------------------------------------


class _Demo:
    """The main thread's side of the demo: each step of it, and its output."""

    def __init__(self, out: TextIO, http_client: str) -> None:
        self.out = out
        self.client_kind, self.make_client = _choose_http_client(http_client)
        self.systems: list[IOSystem] = []
        self.server: ProxyActor | None = None
        self.clients: list[tuple[str, ProxyActor]] = []
        self.finals: list[tuple[str, dict[str, Any] | None]] = []
        self.served: int | None = None
        self.problems: list[str] = []

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def start_server(self, port: int) -> tuple[str, int]:
        io = IOSystem("server", workers=1)
        self.systems.append(io)
        self.server = _ServerTask.start(io, _HOST, port)
        try:
            host, bound = self.server.ask(_ADDRESS, timeout=_ASK_TIMEOUT)
        except GeventIOError as exc:
            raise _DemoFailed(
                f"the server did not start listening on {_HOST}:{port} "
                f"({exc}); its error, if any, is logged above"
            ) from exc
        self.say(f"server listening on http://{host}:{bound}/")
        self.say(f"clients use {self.client_kind}")
        return host, bound

    def start_clients(self, count: int, address: tuple[str, int]) -> None:
        io = IOSystem("clients", workers=1)
        self.systems.append(io)
        for index in range(count):
            name = f"client-{index}"
            path = _PATHS[index % len(_PATHS)]
            interval = _POLL_INTERVALS[index % len(_POLL_INTERVALS)]
            proxy = _ClientTask.start(io, address, path, interval, self.make_client)
            self.clients.append((name, proxy))
            self.say(f"{name}: GET {path} every {interval:g} s")

    def report_until(self, deadline: float, interval: float, started: float) -> None:
        """Print a status line every *interval* seconds until *deadline*.

        Tick k is due at ``started + k * interval`` (computed, not summed, so
        rounding never adds up), and a tick falling on the deadline is still
        printed. Waits on a native event that nothing sets: this process is
        not monkey-patched, so it is a plain OS wait with a timeout.
        """
        ticker = threading.Event()
        tick = 1
        while True:
            due = started + tick * interval
            last = due > deadline + _TICK_SLACK
            if last:
                # No tick is left before the deadline: just wait it out.
                due = deadline
            now = time.monotonic()
            if now < due:
                ticker.wait(due - now)
            elif last:
                return
            else:
                self.say(f"t={_seconds(tick * interval)}s  {self.status_line()}")
                tick += 1

    def status_line(self) -> str:
        parts = []
        for name, proxy in self.clients:
            try:
                report = proxy.ask(StatusCheck(), timeout=_ASK_TIMEOUT)
            except GeventIOError as exc:
                parts.append(f"{name}: no answer ({type(exc).__name__})")
                continue
            parts.append(
                f"{name}: {report['requests']} req, {report['errors']} err, "
                f"p50 {_ms(report['p50_ms'])}, {report['handled']} msgs"
            )
        return " | ".join(parts)

    def finish(self) -> None:
        """Stop the clients' polling, then collect their and the server's
        final status."""
        for name, proxy in self.clients:
            try:
                report = proxy.ask(_FINISH, timeout=_FINISH_TIMEOUT)
            except GeventIOError as exc:
                self.problems.append(f"{name} gave no final status: {exc!r}")
                report = None
            self.finals.append((name, report))
        if self.server is not None and self.server.is_alive:
            try:
                report = self.server.ask(StatusCheck(), timeout=_ASK_TIMEOUT)
            except GeventIOError as exc:
                self.problems.append(f"the server gave no status: {exc!r}")
            else:
                self.served = report["served"]

    def shutdown(self) -> list[str]:
        """Shut the IO systems down, newest first; describe how long each
        took."""
        took = []
        # Newest first: the clients stop while the server is still up, so
        # that none of their requests fails for a reason not their own.
        for io in reversed(self.systems):
            started = time.monotonic()
            stuck = io.shutdown(timeout=_SHUTDOWN_TIMEOUT)
            took.append(f"{io.name} {time.monotonic() - started:.3f} s")
            if stuck:
                names = ", ".join(worker.name for worker in stuck)
                self.problems.append(
                    f"IO system {io.name!r}: workers still running after "
                    f"{_SHUTDOWN_TIMEOUT:g} s: {names}"
                )
        return took

    def summarize(self, shutdown_took: list[str], elapsed: float) -> None:
        self.say("summary:")
        for name, report in self.finals:
            if report is None:
                self.say(f"  {name}: no final status")
                continue
            self.say(
                f"  {name}: {report['requests']} requests, "
                f"{report['errors']} errors, latency mean {_ms(report['mean_ms'])}, "
                f"p50 {_ms(report['p50_ms'])}, max {_ms(report['max_ms'])}, "
                f"served by {report['server_worker'] or '-'}"
            )
            if report["errors"]:
                self.problems.append(
                    f"{name} had {report['errors']} failed requests, the last: "
                    f"{report['last_error']}"
                )
        reports = [report for _, report in self.finals if report is not None]
        requests = sum(report["requests"] for report in reports)
        errors = sum(report["errors"] for report in reports)
        served = "-" if self.served is None else self.served
        dead = ", ".join(f"{io.name} {io.dead_letters}" for io in self.systems)
        self.say(f"  total: {requests} requests, {errors} errors")
        self.say(f"  server: {served} requests served")
        self.say(f"  dead letters: {dead or '-'}")
        # The longest stall shows whether anything blocked a hub: the
        # clients' and the server's I/O must all have been cooperative.
        for io in self.systems:
            for stats in io.stats():
                stall = stats.get("max_stall")
                self.say(
                    f"  {stats.get('worker', io.name)}: "
                    f"{stats.get('delivered', '-')} messages delivered, "
                    f"longest loop stall {_ms(None if stall is None else stall * 1000)}"
                )
        self.say(f"  shutdown: {', '.join(shutdown_took) or '-'}")
        self.say(f"  elapsed: {elapsed:.2f} s")


class _DemoFailed(Exception):
    """A step of the demo failed; the message says which and why."""


def run_demo(
    *,
    duration: float = 5.0,
    clients: int = 3,
    port: int = 0,
    interval: float = 1.0,
    http_client: str = "auto",
    out: TextIO | None = None,
) -> int:
    """Run the demo and return the process exit status.

    Call it from a plain thread (normally the main thread), never from a
    gevent hub: it blocks the calling thread for about *duration* seconds,
    plus the bounded time that starting and shutting down take. Arguments
    are not checked here; :mod:`geventio._cli` validates them.

    Args:
        duration: Seconds to run the clients for.
        clients: Number of client tasks.
        port: Port for the server on 127.0.0.1; 0 picks a free one.
        interval: Seconds between status lines.
        http_client: ``"auto"``, ``"geventhttpclient"`` or ``"stdlib"``.
        out: Where to print; standard output by default.

    Returns:
        0 when every request succeeded and both IO systems shut down in
        time; 1 otherwise, with the reasons printed; 130 when interrupted
        (the demo still shuts down and prints its summary).
    """
    demo = _Demo(sys.stdout if out is None else out, http_client)
    started = time.monotonic()
    interrupted = False

    try:
        try:
            address = demo.start_server(port)
            demo.start_clients(clients, address)
            clients_started = time.monotonic()
            demo.report_until(clients_started + duration, interval, clients_started)
        except KeyboardInterrupt:
            interrupted = True
        except _DemoFailed as exc:
            demo.problems.append(str(exc))
        demo.finish()
    finally:
        shutdown_took = demo.shutdown()

    demo.summarize(shutdown_took, time.monotonic() - started)
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


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _seconds(value: float) -> str:
    # One decimal at least ("t=1.0s"), up to three when the interval needs
    # them ("t=0.25s"), never float noise ("t=0.30000000000000004s").
    text = f"{value:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text
