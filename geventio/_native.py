"""Native (never monkey-patched) threading primitives.

``gevent.monkey.patch_all()`` replaces ``threading`` and ``_thread`` with
greenlet-based versions. geventio's workers must be real OS threads and the
locks that hand work between them must be real OS locks, whatever the host
program patched, so everything here comes from
:func:`gevent.monkey.get_original`, which returns the unpatched object (or
the current one when nothing was patched).
"""

from __future__ import annotations

from gevent.monkey import get_original

start_new_thread = get_original("_thread", "start_new_thread")
allocate_lock = get_original("_thread", "allocate_lock")
get_ident = get_original("_thread", "get_ident")
thread_local = get_original("_thread", "_local")
monotonic = get_original("time", "monotonic")
sleep = get_original("time", "sleep")

__all__ = [
    "allocate_lock",
    "get_ident",
    "monotonic",
    "sleep",
    "start_new_thread",
    "thread_local",
]
