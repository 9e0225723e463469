"""What the benchmark measures: the workloads of issue 6, their sizes in
each mode, the rows of the report and the targets geventio must meet."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "IMPLEMENTATIONS",
    "LETTERS",
    "MODES",
    "REPETITIONS",
    "ROWS",
    "SLOW",
    "TARGETS",
    "WORKLOADS",
    "Row",
    "Target",
    "Workload",
]

#: Every implementation, geventio first; the others are its peers.
IMPLEMENTATIONS = ("geventio", "pykka", "threads", "gevent-hub")

#: Peers with one OS thread per actor: they get fewer messages and tasks
#: per repetition (a rate needs no more), and fewer idle tasks in (h).
SLOW = frozenset({"pykka", "threads"})

MODES = ("full", "quick", "smoke")

#: Repetitions per workload and implementation, per mode; and for (h),
#: whose every repetition is a fresh process starting 100,000 tasks.
REPETITIONS = {"full": 7, "quick": 3, "smoke": 1}
MEMORY_REPETITIONS = {"full": 2, "quick": 1, "smoke": 1}


@dataclass(frozen=True)
class Workload:
    """One workload: what every implementation runs, and how much of it.

    ``sizes`` maps a mode to ``(fast, slow)``: the size for geventio and
    the gevent hub, and for the one-thread-per-actor peers. The size is a
    message count per sender, an ask or round-trip count, a task count, or
    a number of start/stop cycles.
    """

    key: str
    letter: str
    title: str
    function: str
    sizes: dict[str, tuple[int, int]]
    senders: int = 1

    def applies_to(self, module: object) -> bool:
        """Whether an implementation module has this workload.

        Only plain threads measure the operating system's floor; every
        implementation has every other workload.
        """
        return self.key in ("h", "i") or hasattr(module, self.function)

    def size(self, mode: str, implementation: str) -> int:
        fast, slow = self.sizes[mode]
        return slow if implementation in SLOW else fast

    def expected(self, mode: str, implementation: str) -> int:
        """How many messages, asks, tasks or cycles a run must verify."""
        return self.size(mode, implementation) * self.senders


WORKLOADS = (
    Workload(
        "a",
        "a",
        "tell, 1 plain thread -> 1 task",
        "tell_one",
        {"full": (200_000, 50_000), "quick": (50_000, 20_000), "smoke": (300, 300)},
    ),
    Workload(
        "b",
        "b",
        "tell, 4 plain threads -> 1 task",
        "tell_four",
        {"full": (50_000, 12_500), "quick": (12_500, 5_000), "smoke": (100, 100)},
        senders=4,
    ),
    Workload(
        "c",
        "c",
        "ask from a plain thread",
        "ask_from_thread",
        {"full": (3_000, 3_000), "quick": (1_000, 1_000), "smoke": (30, 30)},
    ),
    Workload(
        "c-floor",
        "c",
        "OS floor: a round trip between two threads on native locks",
        "lock_round_trip",
        {"full": (3_000, 3_000), "quick": (1_000, 1_000), "smoke": (30, 30)},
    ),
    Workload(
        "d",
        "d",
        "ask, task -> task on another worker",
        "ask_other_worker",
        {"full": (3_000, 2_000), "quick": (1_000, 500), "smoke": (30, 30)},
    ),
    Workload(
        "e",
        "e",
        "ask, task -> task on the same worker",
        "ask_same_worker",
        {"full": (5_000, 2_000), "quick": (2_000, 500), "smoke": (30, 30)},
    ),
    Workload(
        "f-same",
        "f",
        "ping-pong, two tasks on one worker",
        "pingpong_same",
        {"full": (20_000, 3_000), "quick": (5_000, 1_000), "smoke": (50, 50)},
    ),
    Workload(
        "f-two",
        "f",
        "ping-pong, two tasks on two workers",
        "pingpong_two",
        {"full": (5_000, 3_000), "quick": (2_000, 1_000), "smoke": (50, 50)},
    ),
    Workload(
        "g",
        "g",
        "tasks started, until each ran its first line",
        "start_rate",
        {"full": (10_000, 1_000), "quick": (3_000, 300), "smoke": (30, 20)},
    ),
    Workload(
        "h",
        "h",
        "resident memory per idle task",
        "idle_tasks",
        {"full": (100_000, 2_000), "quick": (20_000, 500), "smoke": (200, 20)},
    ),
    Workload(
        "i",
        "i",
        "start + shutdown of a 1-worker system",
        "start_stop",
        {"full": (20, 20), "quick": (10, 10), "smoke": (2, 2)},
    ),
)

LETTERS = "abcdefghi"


@dataclass(frozen=True)
class Row:
    """One line of the report: one figure of one workload."""

    key: str
    figure: str
    label: str
    unit: str
    higher_is_better: bool


ROWS = (
    Row("a", "rate", "a  tell, 1 thread -> 1 task", "msg/s", True),
    Row("b", "rate", "b  tell, 4 threads -> 1 task", "msg/s", True),
    Row("c", "median", "c  ask from a thread, median", "us", False),
    Row("c", "p99", "c  ask from a thread, p99", "us", False),
    Row("c-floor", "median", "   OS floor: 2-lock round trip", "us", False),
    Row("d", "median", "d  ask task->task, 2 workers", "us", False),
    Row("e", "median", "e  ask task->task, 1 worker", "us", False),
    Row("f-same", "round_trip", "f  ping-pong, 1 worker", "us", False),
    Row("f-two", "round_trip", "f  ping-pong, 2 workers", "us", False),
    Row("g", "rate", "g  tasks started", "tasks/s", True),
    Row("h", "per_task", "h  RSS per idle task", "KiB", False),
    Row("h", "greenlets", "h  greenlets per idle task", "count", False),
    Row("h", "vms_per_task", "h  virtual memory per idle task", "KiB", False),
    Row("i", "ms", "i  start + shutdown", "ms", False),
    Row("i", "threads", "i  threads while running", "count", False),
    Row("i", "fds", "i  descriptors while running", "count", False),
    Row("i", "threads_left", "i  threads left behind", "count", False),
    Row("i", "fds_left", "i  descriptors left behind", "count", False),
)


@dataclass(frozen=True)
class Target:
    """A goal from issue 6: geventio's figure, or its ratio to a peer's."""

    key: str
    figure: str
    peer: str | None
    at_least: bool
    limit: float

    def describe(self) -> str:
        subject = f"geventio/{self.peer}" if self.peer else "geventio"
        relation = ">=" if self.at_least else "<="
        return f"{self.key} {self.figure}: {subject} {relation} {self.limit:g}"

    def holds(self, value: float) -> bool:
        return value >= self.limit if self.at_least else value <= self.limit


TARGETS = (
    Target("a", "rate", "pykka", True, 10),
    Target("a", "rate", "gevent-hub", True, 0.6),
    Target("b", "rate", "pykka", True, 10),
    Target("b", "rate", "gevent-hub", True, 0.6),
    Target("c", "median", "gevent-hub", False, 1.15),
    Target("d", "median", "gevent-hub", False, 1.15),
    Target("e", "median", "pykka", False, 0.1),
    Target("f-same", "round_trip", "pykka", False, 0.1),
    Target("g", "rate", "gevent-hub", True, 0.5),
    Target("h", "per_task", None, False, 4.0),
    Target("i", "ms", None, False, 5.0),
    Target("i", "threads_left", None, False, 0),
    Target("i", "fds_left", None, False, 0),
)
