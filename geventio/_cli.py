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


# Every subcommand, in the order `--help` lists them.
_COMMANDS: tuple[Callable[[_Subparsers, argparse.ArgumentParser], None], ...] = (
    _add_demo_command,
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
