"""The ``nbo`` command line: one entry point for the stack, the worker and the tools.

Each sub-command builds the settings once (:func:`app.settings.load_settings`) and passes them
down. Imports of heavy modules (faust, aiokafka) happen inside the sub-command that needs them, so
``nbo stack status`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

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
    # Scoring multiplies small matrices per batch: BLAS threads only contend with the event
    # loop (measured here: 2.4x slower batches with OpenBLAS's default threads on 2 cores).
    # Set before numpy is first imported; an explicit setting in the environment wins.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    from agents.app import run_worker

    run_worker(settings, loglevel=args.loglevel)
    return 0


def _produce(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from app.commands.files import event_lines
    from app.commands.kafka_io import send_all
    from app.settings import kafka_bootstrap_or_local

    topic = args.topic or settings.topic_user_events
    lines = list(event_lines(args.file))
    sent = asyncio.run(send_all(kafka_bootstrap_or_local(settings), topic, lines, total=len(lines)))
    print(f"produced {sent} events to {topic}")
    return 0


def _catalog_load(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from app.commands.files import catalogue_lines
    from app.commands.kafka_io import send_all
    from app.connections import kafka_client_kwargs

    bootstrap = kafka_client_kwargs(settings)
    items, offers = catalogue_lines(args.file)
    asyncio.run(send_all(bootstrap, settings.topic_item_catalog, items, total=len(items)))
    asyncio.run(send_all(bootstrap, settings.topic_offer_catalog, offers, total=len(offers)))
    print(
        f"loaded {len(items)} items onto {settings.topic_item_catalog}, "
        f"{len(offers)} offers onto {settings.topic_offer_catalog}"
    )
    return 0


def _tail(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from app.commands.kafka_io import tail
    from app.connections import kafka_client_kwargs

    asyncio.run(
        tail(
            kafka_client_kwargs(settings),
            args.topic or settings.topic_offers,
            from_beginning=args.from_beginning,
            limit=args.max,
            timeout_s=args.idle_timeout,
        )
    )
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from app.commands.demo import DemoOptions, run_demo

    keep = sys.stdin.isatty() if args.keep_running is None else args.keep_running
    options = DemoOptions(events=args.events, movielens=args.movielens, keep_running=keep)
    return run_demo(settings, options)


def _bench(args: argparse.Namespace, settings: Settings) -> int:
    import dataclasses

    from app.bench.runner import BenchOptions, run_bench

    options = BenchOptions.quick() if args.quick else BenchOptions()
    overrides = {
        "events": args.events,
        "users": args.users,
        "batch_size": args.batch_size,
        "offer_sizes": tuple(args.offers) if args.offers else None,
    }
    options = dataclasses.replace(options, **{k: v for k, v in overrides.items() if v})
    if not (settings.kafka_bootstrap and settings.redis_url):
        from app.stack import stack_up

        stack_up(settings)
    run_bench(settings, options, args.json)
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

    produce = sub.add_parser("produce", help="JSON lines of events onto user-events")
    produce.add_argument("file", type=Path)
    produce.add_argument("--topic", help="default: NBO_TOPIC_USER_EVENTS")
    produce.set_defaults(handler=_produce)

    catalog = sub.add_parser("catalog", help="the item and offer catalogues")
    catalog_sub = catalog.add_subparsers(dest="catalog_command", required=True)
    load = catalog_sub.add_parser(
        "load", help="JSON lines of items and offers onto the catalogue topics"
    )
    load.add_argument("file", type=Path)
    load.set_defaults(handler=_catalog_load)

    tail = sub.add_parser("tail", help="print next-best-offer messages as they arrive")
    tail.add_argument("--topic", help="default: NBO_TOPIC_OFFERS")
    tail.add_argument("--from-beginning", action="store_true")
    tail.add_argument("--max", type=int, default=None, help="stop after this many")
    tail.add_argument("--idle-timeout", type=float, default=None, help="stop after idle seconds")
    tail.set_defaults(handler=_tail)

    demo = sub.add_parser("demo", help="the whole pipeline on generated (or MovieLens) data")
    demo.add_argument("--events", type=int, default=50_000, help="generated events (50,000)")
    demo.add_argument("--movielens", type=Path, help="replay a MovieLens directory instead")
    demo.add_argument(
        "--keep-running",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep the worker up after the summary (default: when a terminal is attached)",
    )
    demo.set_defaults(handler=_demo)

    bench = sub.add_parser("bench", help="the worker against raw Kafka and naive baselines")
    bench.add_argument("--quick", action="store_true", help="small sizes, under two minutes")
    bench.add_argument("--events", type=int, help="events to drain (200,000)")
    bench.add_argument("--users", type=int, help="distinct users (10,000)")
    bench.add_argument("--offers", type=int, nargs="+", help="catalogue sizes (1000 10000)")
    bench.add_argument("--batch-size", type=int, help="events per batch (500)")
    bench.add_argument("--json", type=Path, help="write every figure to this JSON file")
    bench.set_defaults(handler=_bench)

    from app.commands.learning_cli import register_learning_commands

    register_learning_commands(sub)
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
    from app.connections import ConnectionProblem
    from app.stack import StackError

    try:
        return handler(args, settings)
    except StackError as exc:
        print(f"nbo: {exc}", file=sys.stderr)
        return 2
    except ConnectionProblem as exc:
        print(f"nbo: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    raise SystemExit(main())
