"""Cross-thread hand-off: the only code in geventio that wakes another hub.

Two pieces live here:

* :class:`Inbox`, one per worker. Any thread appends work to it (a callable
  to run on the hub, or a task whose mailbox became non-empty) and wakes the
  worker's hub through a single gevent async watcher, the one watcher type
  gevent documents as safe to signal from a foreign thread. The work itself
  is only ever executed by the worker's own hub.
* :class:`OneShot`, a single-assignment result that any thread may set and
  that any thread or greenlet may wait for: a plain thread blocks on a
  native lock, a greenlet blocks only itself, cooperatively, on its own hub.

Both rely on the GIL making ``deque.append``/``deque.popleft`` and plain
attribute stores atomic, and on the "publish, then check the flag" ordering
explained in :meth:`Inbox._wake`.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from functools import partial
from logging import ERROR
from typing import Any

from gevent._hub_local import get_hub_if_exists
from gevent.hub import Waiter
from greenlet import getcurrent

from . import _native
from ._logging import log as _log
from .errors import AskTimeout, WouldDeadlock

log = logging.getLogger(__name__)

# The inbox of the worker running on the current native thread, if any. A
# native thread-local: under monkey-patching ``threading.local`` would be
# local to each greenlet instead.
_thread_state = _native.thread_local()


def current_inbox() -> Inbox | None:
    """Return the inbox of the worker whose thread is calling, or None."""
    return getattr(_thread_state, "inbox", None)


class Inbox:
    """Work queued for one worker's hub, from any thread.

    ``calls`` holds ``(function, args)`` pairs run in order on the hub;
    ``ready`` holds task cells whose mailbox gained messages. Calls are run
    before ready cells on each wake-up, which is what lets a stop overtake
    the messages already queued.
    """

    __slots__ = (
        "_async",
        "_calls",
        "_closed",
        "_ident",
        "_lock",
        "_loop",
        "_on_ready",
        "_ready",
        "_wake_pending",
        "wakeups",
    )

    def __init__(self, on_ready: Callable[[Any], None]) -> None:
        self._calls: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._ready: deque[Any] = deque()
        self._on_ready = on_ready
        self._wake_pending = False
        self._closed = False
        self._lock = _native.allocate_lock()
        self._loop: Any = None
        self._async: Any = None
        self._ident = -1
        self.wakeups = 0

    # -- owner thread -----------------------------------------------------

    def open(self, hub: Any) -> None:
        """Attach to *hub*. Only the worker's own thread calls this."""
        self._loop = hub.loop
        self._ident = _native.get_ident()
        watcher = hub.loop.async_()
        watcher.start(self._drain)
        _thread_state.inbox = self
        with self._lock:
            self._async = watcher
            if self._calls or self._ready:
                # Queued before the watcher existed (a shutdown racing the
                # start): nobody could signal it, so drain on the first turn.
                self._wake_pending = True
                self._loop.run_callback(self._drain)

    def close(self) -> None:
        """Stop accepting wake-ups and release the watcher's descriptor.

        Only the worker's own thread calls this, once its hub stopped
        running. Work still queued is dealt with by :meth:`drain_closed`.
        """
        with self._lock:
            self._closed = True
            if self._async is not None:
                self._async.close()
                self._async = None
        _thread_state.inbox = None

    def drain_closed(self) -> None:
        """Settle whatever is still queued after :meth:`close`.

        Calls are dropped (they are wake-ups for greenlets of a hub that no
        longer runs); ready cells are handed to ``on_ready``, which turns
        their messages into dead letters.
        """
        self._calls.clear()
        ready = self._ready
        while ready:
            self._on_ready(ready.popleft())

    def pending(self) -> bool:
        """True if calls or ready cells are queued; any thread."""
        return bool(self._calls or self._ready)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def owner_ident(self) -> int:
        return self._ident

    # -- any thread -------------------------------------------------------

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> bool:
        """Run ``fn(*args)`` on the hub's own greenlet, soon.

        Callable from any thread; never blocks. *fn* runs in the hub greenlet,
        so it must not block: it may switch into other greenlets or spawn
        them. Returns False, without queueing, once the inbox is closed.
        """
        if self._closed:
            return False
        self._calls.append((fn, args))
        if not self._wake_pending:
            self._wake()
        return True

    def schedule(self, cell: Any) -> None:
        """*cell*'s mailbox has messages; any thread; never blocks."""
        self._ready.append(cell)
        if not self._wake_pending:
            self._wake()
        if self._closed:
            # The hub is gone: nobody else will look at the ready queue.
            self.drain_closed()

    def _wake(self) -> None:
        # Producers publish their item *before* reading ``_wake_pending``
        # and the hub clears the flag *before* draining. So a producer that
        # sees the flag still set knows the coming drain will see its item,
        # and a burst of messages costs one wake-up, not one each.
        self._wake_pending = True
        if _native.get_ident() == self._ident:
            # Same thread: a loop callback is cheaper than the watcher's
            # write to its descriptor.
            self._loop.run_callback(self._drain)
            return
        with self._lock:
            # The lock orders this send against open() and close(): a
            # watcher is signalled only between the two.
            if self._async is not None:
                self._async.send()

    # -- hub greenlet -----------------------------------------------------

    def _drain(self) -> None:
        self._wake_pending = False
        self.wakeups += 1
        calls = self._calls
        while calls:
            fn, args = calls.popleft()
            try:
                fn(*args)
            except Exception as exc:
                # Calls are framework code; a failure here is a geventio
                # bug, but it must not take the hub down with it.
                _log(
                    log, ERROR, "internal error running %r on the hub", fn, exc_info=exc
                )
        # Only the cells ready now: one that becomes ready again meanwhile
        # (two tasks of this worker telling each other) waits for the next
        # drain, so the loop gets to its timers and I/O in between.
        ready = self._ready
        on_ready = self._on_ready
        for _ in range(len(ready)):
            if not ready:
                break  # a greenlet of this hub took the rest (Worker)
            on_ready(ready.popleft())
        if ready and not self._wake_pending:
            self._wake_pending = True
            self._loop.run_callback(self._drain)


_UNSET = object()


class _Timer:
    """A loop timer resuming a waiting greenlet, closed with a ``with``."""

    __slots__ = ("_timer",)

    def __init__(self, hub: Any, seconds: float | None, callback: Any) -> None:
        self._timer = None
        if seconds is not None:
            self._timer = hub.loop.timer(seconds)
            self._timer.start(callback, _UNSET)

    def __enter__(self) -> _Timer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.close()


class OneShot:
    """A value (or an exception) set once from any thread, awaited anywhere.

    Waiters in a plain thread block that thread on a native lock; waiters in
    a greenlet block only that greenlet, and are resumed by their own hub:
    through the worker's :class:`Inbox` on a worker thread, through gevent's
    ``loop.run_callback_threadsafe`` on any other thread that has a hub.
    """

    __slots__ = ("_callbacks", "_exc", "_lock", "_value", "_waiters")

    def __init__(self) -> None:
        self._value: Any = _UNSET
        self._exc: BaseException | None = None
        self._lock = _native.allocate_lock()
        self._waiters: list[Any] = []
        self._callbacks: list[Callable[[], Any]] | None = None

    @property
    def done(self) -> bool:
        return self._value is not _UNSET

    def set(self, value: Any = None) -> bool:
        """Store *value* and wake every waiter; False if already set."""
        return self._settle(value, None)

    def fail(self, exc: BaseException) -> bool:
        """Store *exc* for waiters to raise; False if already set."""
        return self._settle(None, exc)

    def _settle(self, value: Any, exc: BaseException | None) -> bool:
        with self._lock:
            if self._value is not _UNSET:
                return False
            self._value = value
            self._exc = exc
            # Waking under the lock orders each wake-up before the waiter's
            # own clean-up (_forget), which may close a watcher.
            for wake in self._waiters:
                wake()
            self._waiters = []
            callbacks, self._callbacks = self._callbacks, None
        # Callbacks run outside the lock: they may look at this object.
        for callback in callbacks or ():
            callback()
        return True

    def on_settled(self, fn: Callable[[], Any]) -> None:
        """Call ``fn()`` once settled (at once if already); any thread.

        It runs in the settling thread (possibly a worker hub), so it must
        be quick and must not block: queueing work elsewhere is the idea.
        """
        with self._lock:
            if self._value is _UNSET:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(fn)
                return
        fn()

    def result(self) -> Any:
        """Return the value or raise the exception; only once :attr:`done`."""
        if self._exc is not None:
            raise self._exc
        return self._value

    def wait(
        self, timeout: float | None = None, then: Callable[[], Any] | None = None
    ) -> bool:
        """Wait until set; True if it was set, False on timeout.

        Callable from any thread or greenlet. Blocks only the calling
        greenlet when the calling thread has a gevent hub (a worker's, or
        one the caller created, as monkey-patched programs always do), and
        the calling thread otherwise.

        *then*, if given, is called once the waiter is registered, just
        before blocking: an ask sends its question there, so that the
        asking thread is asleep (and has let go of the GIL) by the time the
        other side runs, instead of still preparing to wait.

        Raises:
            WouldDeadlock: called from a hub greenlet itself, which can
                never block.
        """
        if self._value is not _UNSET:
            if then is not None:
                then()
            return True
        hub = get_hub_if_exists()
        if hub is None:
            return self._wait_thread(timeout, then)
        return self._wait_greenlet(hub, timeout, then)

    def _wait_thread(
        self, timeout: float | None, then: Callable[[], Any] | None
    ) -> bool:
        lock = _native.allocate_lock()
        lock.acquire()
        with self._lock:
            registered = self._value is _UNSET
            if registered:
                self._waiters.append(lock.release)
        if then is not None:
            try:
                then()
            except BaseException:
                self._forget(lock.release)
                raise
        if not registered:
            return True
        if lock.acquire(True, -1 if timeout is None else timeout):
            return True
        self._forget(lock.release)
        return self._value is not _UNSET

    def _wait_greenlet(
        self, hub: Any, timeout: float | None, then: Callable[[], Any] | None
    ) -> bool:
        if getcurrent() is hub:
            raise WouldDeadlock("cannot wait inside the hub greenlet itself")
        waiter = Waiter(hub)
        inbox = current_inbox()
        watcher = None
        if inbox is not None:
            wake = partial(_wake_waiter, inbox, waiter)
        else:
            # A hub that is not a worker's: an async watcher of its own, as
            # gevent's thread pool uses, both wakes that hub from any thread
            # and keeps its loop from exiting while nothing else is pending.
            watcher = hub.loop.async_()
            watcher.start(waiter.switch, None)
            wake = watcher.send
        try:
            with self._lock:
                registered = self._value is _UNSET
                if registered:
                    self._waiters.append(wake)
            if then is not None:
                try:
                    then()
                except BaseException:
                    self._forget(wake)
                    raise
            if not registered:
                return True
            if timeout is None:
                woken = waiter.get()
            else:
                with _Timer(hub, timeout, waiter.switch):
                    woken = waiter.get()
            if woken is _UNSET:
                self._forget(wake)
            return self._value is not _UNSET
        finally:
            if watcher is not None:
                watcher.close()

    def _forget(self, wake: Any) -> None:
        with self._lock:
            if wake in self._waiters:
                self._waiters.remove(wake)

    def get(
        self, timeout: float | None = None, then: Callable[[], Any] | None = None
    ) -> Any:
        """Wait as :meth:`wait` does, then return the value or raise.

        On timeout the OneShot expires: a value set later is refused (its
        setter sees False), so a late reply can be counted as a dead letter.

        Raises:
            AskTimeout: nothing was set within *timeout* seconds.
        """
        if not self.wait(timeout, then):
            # Claim the slot with the timeout; a value that won the race
            # in the meantime is returned instead.
            self._settle(None, AskTimeout(f"no reply within {timeout} seconds"))
        return self.result()


def _wake_waiter(inbox: Inbox, waiter: Waiter) -> None:
    """Resume *waiter*, a greenlet waiting on *inbox*'s hub; any thread.

    Bound to its arguments with :func:`functools.partial`, which is cheaper
    to make per wait than a closure.
    """
    if _native.get_ident() == inbox._ident:
        # Set on the waiter's own hub (a task answering a task of the
        # same worker): one loop callback, no trip through the inbox.
        inbox._loop.run_callback(waiter.switch, None)
    else:
        inbox.call_soon(waiter.switch, None)
