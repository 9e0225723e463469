"""The ``python -m geventio`` (and ``geventio``) command line.

Each subcommand lives in one ``_add_<name>_command`` function that adds its
parser and names the function that runs it; :data:`_COMMANDS` lists them.
Adding a subcommand means writing one such function and listing it there.

This module is a program entry point, not library code, so it is the one
place in geventio that configures logging (``--log-level``).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["main"]

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# An argparse subparsers action. argparse keeps its class private, so it
# is typed loosely here.
_Subparsers = Any


def _positive_float(text: str) -> float:
    """Parse a number of seconds that must be greater than zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds, got {text!r}"
        ) from None
    # `not value > 0` also refuses NaN, which compares false to everything.
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(
            f"must be a finite number greater than 0, got {text!r}"
        )
    return value


def _positive_int(text: str) -> int:
    """Parse a count that must be at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a whole number, got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    return value


def _port(text: str) -> int:
    """Parse a TCP port number; 0 asks the system for a free one."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a port number, got {text!r}"
        ) from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535, got {text!r}")
    return value


def _common_options() -> argparse.ArgumentParser:
    """Return a parent parser with the options every subcommand takes."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--log-level",
        type=str.upper,
        choices=_LOG_LEVELS,
        default="WARNING",
        help="lowest level of log records to print to stderr (default: %(default)s)",
    )
    return common


def _add_demo_command(subparsers: _Subparsers, common: argparse.ArgumentParser) -> None:
    """Add ``demo``: an HTTP server task polled by client tasks."""
    parser = subparsers.add_parser(
        "demo",
        parents=[common],
        help="run an HTTP server and supervised clients as tasks, stall one",
        description=(
            "Start an IO system running a gevent WSGI server on 127.0.0.1 "
            "as a task, and a supervised 1-worker IO system whose client "
            "tasks poll it, each on its own schedule. Once per interval the "
            "main thread asks every client for its status and prints one "
            "line. Part-way through, one client spins the CPU without "
            "yielding: the blocking warning names it, the supervisor's "
            "status check fails, and a new IO system replaces the stalled "
            "one. Exits 0 after a clean shutdown with no client errors and, "
            "after the stall, one restart and a timely recovery; else 1."
        ),
    )
    parser.add_argument(
        "--duration",
        type=_positive_float,
        default=5.0,
        metavar="SECONDS",
        help="how long to run (default: %(default)s)",
    )
    parser.add_argument(
        "--clients",
        type=_positive_int,
        default=3,
        metavar="N",
        help="number of client tasks (default: %(default)s)",
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=0,
        help="server port on 127.0.0.1; 0 picks a free one (default: %(default)s)",
    )
    parser.add_argument(
        "--interval",
        type=_positive_float,
        default=1.0,
        metavar="SECONDS",
        help="time between status lines (default: %(default)s)",
    )
    parser.add_argument(
        "--no-stall",
        dest="stall",
        action="store_false",
        help="do not stall a client (no blocking warning, no restart)",
    )
    parser.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    # Imported here so that argument errors and --help never depend on the
    # core being importable, and stay fast.
    from geventio._demo import run_demo

    return run_demo(
        duration=args.duration,
        clients=args.clients,
        port=args.port,
        interval=args.interval,
        stall=args.stall,
    )


def _bench_workloads(text: str) -> str:
    from geventio._bench import parse_workloads

    return parse_workloads(text)


def _bench_implementations(text: str) -> tuple[str, ...]:
    from geventio._bench import parse_implementations

    return parse_implementations(text)


def _add_bench_command(
    subparsers: _Subparsers, common: argparse.ArgumentParser
) -> None:
    """Add ``bench``: geventio measured side by side with its peers."""
    parser = subparsers.add_parser(
        "bench",
        parents=[common],
        help="measure geventio against Pykka, plain threads and a bare gevent hub",
        description=(
            "Run the workloads of the performance suite (a to i) on geventio "
            "and on every peer that can be imported, interleaving several "
            "repetitions, and print the medians, the ratios geventio/peer and "
            "the performance targets with PASS or FAIL. Every run verifies "
            "that each message was handled once and in order. Exits 1 if any "
            "run failed that verification, else 0. Run it on an idle machine."
        ),
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--quick",
        action="store_const",
        dest="mode",
        const="quick",
        default="full",
        help="smaller sizes and 3 repetitions: under a minute",
    )
    size.add_argument(
        "--smoke",
        action="store_const",
        dest="mode",
        const="smoke",
        help="tiny sizes, 1 repetition: checks that everything runs; "
        "the figures mean nothing",
    )
    parser.add_argument(
        "--only",
        type=_bench_workloads,
        default=None,
        metavar="LETTERS",
        help="comma-separated workloads to run, e.g. a,c,f (default: all)",
    )
    parser.add_argument(
        "--implementations",
        type=_bench_implementations,
        default=None,
        metavar="NAMES",
        help="comma-separated implementations among geventio, pykka, threads "
        "and gevent-hub; geventio always runs (default: all)",
    )
    parser.add_argument(
        "--repeat",
        type=_positive_int,
        default=None,
        metavar="N",
        help="repetitions per workload (default: 7, or 3 with --quick)",
    )
    parser.add_argument(
        "--json",
        default=None,
        metavar="FILE",
        help="also write every figure of every repetition to FILE",
    )
    parser.set_defaults(run=_run_bench)


def _run_bench(args: argparse.Namespace) -> int:
    from geventio._bench import IMPLEMENTATIONS, LETTERS, run_bench

    return run_bench(
        mode=args.mode,
        only=args.only or LETTERS,
        implementations=args.implementations or IMPLEMENTATIONS,
        repetitions=args.repeat,
        json_path=args.json,
    )


# Every subcommand, in the order `--help` lists them.
_COMMANDS: tuple[Callable[[_Subparsers, argparse.ArgumentParser], None], ...] = (
    _add_demo_command,
    _add_bench_command,
)


def build_parser() -> argparse.ArgumentParser:
    """Return the parser for the whole command line.

    Returns:
        An :class:`argparse.ArgumentParser` whose parsed namespace has a
        ``run`` attribute: the function that runs the chosen subcommand.
    """
    parser = argparse.ArgumentParser(
        prog="python -m geventio",
        description="Tools that come with geventio.",
    )
    subparsers = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", required=True
    )
    common = _common_options()
    for add_command in _COMMANDS:
        add_command(subparsers, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Called from the main thread of a program (``python -m geventio`` or the
    ``geventio`` script); it blocks that thread while the subcommand runs.

    Args:
        argv: The arguments after the program name; ``None`` reads
            :data:`sys.argv`.

    Returns:
        The process exit status: 0 on success, 1 when the subcommand
        failed. Bad arguments make argparse print an error and raise
        :exc:`SystemExit` with status 2.
    """
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s",
    )
    status: int = args.run(args)
    return status
