"""Native (never monkey-patched) threading primitives.

``gevent.monkey.patch_all()`` replaces ``threading`` and ``_thread`` with
greenlet-based versions. geventio's workers must be real OS threads and the
locks that hand work between them must be real OS locks, whatever the host
program patched, so everything here comes from
:func:`gevent.monkey.get_original`, which returns the unpatched object (or
the current one when nothing was patched).
"""

from __future__ import annotations

from collections.abc import Callable

from gevent.monkey import get_original

start_new_thread = get_original("_thread", "start_new_thread")
allocate_lock = get_original("_thread", "allocate_lock")
get_ident = get_original("_thread", "get_ident")
thread_local = get_original("_thread", "_local")
TIMEOUT_MAX: float = get_original("_thread", "TIMEOUT_MAX")
monotonic = get_original("time", "monotonic")
sleep = get_original("time", "sleep")


def name_this_thread(name: str) -> Callable[[], None]:
    """Give the calling raw thread a name in :mod:`threading` (and so in
    log records); return the function that removes it again.

    Threads started with the raw ``start_new_thread`` are unknown to
    :mod:`threading`, which would call them ``Dummy-N`` and, before Python
    3.12, keep their entry for ever. After ``patch_all()`` threading tracks
    greenlets, not threads, so nothing is done then.
    """
    import threading

    from gevent.monkey import is_module_patched

    if is_module_patched("threading"):
        # Known shortcoming: worker threads then have no name in threading
        # (log records say "Dummy-N"). Patched threading keeps one entry
        # per greenlet, and writing a native thread into it would confuse
        # gevent's own bookkeeping.
        return lambda: None
    threading.current_thread().name = name
    ident = get_ident()

    def forget() -> None:
        with threading._active_limbo_lock:  # type: ignore[attr-defined]
            threading._active.pop(ident, None)  # type: ignore[attr-defined]

    return forget


__all__ = [
    "TIMEOUT_MAX",
    "allocate_lock",
    "get_ident",
    "monotonic",
    "name_this_thread",
    "sleep",
    "start_new_thread",
    "thread_local",
]
