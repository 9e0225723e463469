"""Logging from code that may run in a hub greenlet.

A hub greenlet must never wait. After ``gevent.monkey.patch_all()`` a
logging handler's lock is a gevent lock, and waiting for it in the hub
raises ``BlockingSwitchOutError`` whenever another thread is logging at
that moment. geventio's own records from the hub go through :func:`log`,
which hands them to a new greenlet there.
"""

from __future__ import annotations

import logging
from typing import Any

import gevent
from gevent._hub_local import get_hub_if_exists
from greenlet import getcurrent


def log(
    logger: logging.Logger,
    level: int,
    msg: str,
    *args: Any,
    exc_info: BaseException | None = None,
) -> None:
    """Log as ``logger.log`` does, from any thread, hub greenlets included;
    never blocks a hub greenlet."""
    if not logger.isEnabledFor(level):
        return
    hub = get_hub_if_exists()
    if hub is not None and getcurrent() is hub:
        # Runs as soon as the hub gets to its callbacks, in a greenlet that
        # may wait for the handler's lock like any other.
        # Known shortcoming: a record made as the worker's loop is torn
        # down may never be written; waiting for it there could hold up a
        # shutdown for as long as another thread logs.
        gevent.spawn_raw(logger.log, level, msg, *args, exc_info=exc_info)
    else:
        logger.log(level, msg, *args, exc_info=exc_info)
