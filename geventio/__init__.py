"""geventio: run tasks inside gevent hubs on worker threads.

An :class:`~geventio.IOSystem` is a named group of workers, each a native
thread with its own gevent hub. A :class:`~geventio.Task` is bound to one
worker and runs there as greenlets; its :class:`~geventio.ProxyActor` is
the thread-safe handle everyone else uses to talk to it.
"""

import logging

from . import interfaces
from ._iosystem import IOSystem
from ._messages import PoisonPill, StatusCheck, Terminated
from ._proxy import AskFuture, ProxyActor
from ._supervisor import Supervisor
from ._task import Task
from ._worker import Worker
from .errors import (
    AskTimeout,
    GeventIOError,
    IOSystemShutdown,
    ProxyStopped,
    StallInterrupted,
    WouldDeadlock,
)

__all__ = [
    "AskFuture",
    "AskTimeout",
    "GeventIOError",
    "IOSystem",
    "IOSystemShutdown",
    "PoisonPill",
    "ProxyActor",
    "ProxyStopped",
    "StallInterrupted",
    "StatusCheck",
    "Supervisor",
    "Task",
    "Terminated",
    "Worker",
    "WouldDeadlock",
    "interfaces",
]

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
