"""The ``nbo`` command line: one entry point for the stack, the worker and the tools.

Each sub-command builds the settings once (:func:`app.settings.load_settings`) and passes them
down. Imports of heavy modules (faust, aiokafka) happen inside the sub-command that needs them, so
``nbo stack status`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from app.settings import Settings, load_settings

Handler = Callable[[argparse.Namespace, Settings], int]


def _stack_up(args: argparse.Namespace, settings: Settings) -> int:
    from app.stack import stack_up

    info = stack_up(settings)
    for line in info.env_lines():
        print(line)
    print(f"# written to {info.env_file}; load with: source {info.env_file}", file=sys.stderr)
    return 0


def _stack_down(args: argparse.Namespace, settings: Settings) -> int:
    from app.stack import stack_down

    stopped = stack_down(settings)
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return 0


def _stack_status(args: argparse.Namespace, settings: Settings) -> int:
    from app.stack import stack_status

    status = stack_status(settings)
    print(status.render())
    if args.check:
        return 0 if status.all_running else 1
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from agents.app import run_worker

    run_worker(settings, loglevel=args.loglevel)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``nbo`` (exposed for tests and ``--help`` docs)."""
    parser = argparse.ArgumentParser(prog="nbo", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    stack = sub.add_parser("stack", help="local Kafka + Redis without Docker")
    stack_sub = stack.add_subparsers(dest="stack_command", required=True)
    up = stack_sub.add_parser(
        "up", help="start (or reuse) the local broker and Redis; wait until ready"
    )
    up.set_defaults(handler=_stack_up)
    down = stack_sub.add_parser("down", help="stop exactly the processes `up` started")
    down.set_defaults(handler=_stack_down)
    status = stack_sub.add_parser("status", help="what runs where")
    status.add_argument(
        "--check", action="store_true", help="exit 1 unless both services run and answer"
    )
    status.set_defaults(handler=_stack_status)

    worker = sub.add_parser("worker", help="run the stream worker (faust) until SIGTERM")
    worker.add_argument(
        "--loglevel", default="info", choices=["crit", "error", "warn", "info", "debug"]
    )
    worker.set_defaults(handler=_worker)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nbo`` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings = load_settings()
    handler: Handler = args.handler
    from app.stack import StackError

    try:
        return handler(args, settings)
    except StackError as exc:
        print(f"nbo: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
