"""The ``nbo`` command line's tools: the local stack, producing, tailing, the demo, the bench
and the learning commands (``nbo worker`` is added on top of these by :mod:`agents.cli`, the
console script's entry point).

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
from typing import TYPE_CHECKING, Any

from app.settings import Settings, load_settings

if TYPE_CHECKING:
    from app.commands.files import BadLine

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


def _stack_browser(args: argparse.Namespace, settings: Settings) -> int:
    from app.stack.browser import install_browser

    browser = install_browser()
    print(f"chromium: {browser.chromium}\nchromedriver: {browser.chromedriver}")
    return 0


def _report_bad_lines(path: Path, bad: Sequence[BadLine], skip_invalid: bool) -> None:
    for line in bad:
        print(f"nbo: {line.render(path)}", file=sys.stderr)
    if skip_invalid:
        print(f"nbo: skipped {len(bad)} invalid line(s) of {path}", file=sys.stderr)
    else:
        print(
            f"nbo: {len(bad)} invalid line(s) in {path}; nothing was sent "
            "(--skip-invalid sends the valid lines)",
            file=sys.stderr,
        )


def _produce(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from app.commands.files import read_events
    from app.commands.kafka_io import send_all
    from app.settings import kafka_bootstrap_or_local

    topic = args.topic or settings.topic_user_events
    found = read_events(args.file)
    if found.bad:
        _report_bad_lines(args.file, found.bad, args.skip_invalid)
        if not args.skip_invalid:
            return 1
    records = found.records
    sent = asyncio.run(
        send_all(kafka_bootstrap_or_local(settings), topic, records, total=len(records))
    )
    print(f"produced {sent} events to {topic}")
    return 1 if found.bad else 0


def _catalog_load(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from app.commands.files import read_catalogue
    from app.commands.kafka_io import send_all
    from app.connections import kafka_client_kwargs

    found = read_catalogue(args.file)
    if found.bad:
        _report_bad_lines(args.file, found.bad, args.skip_invalid)
        if not args.skip_invalid:
            return 1
    bootstrap = kafka_client_kwargs(settings)
    items, offers = found.items, found.offers
    asyncio.run(send_all(bootstrap, settings.topic_item_catalog, items, total=len(items)))
    asyncio.run(send_all(bootstrap, settings.topic_offer_catalog, offers, total=len(offers)))
    print(
        f"loaded {len(items)} items onto {settings.topic_item_catalog}, "
        f"{len(offers)} offers onto {settings.topic_offer_catalog}"
    )
    return 1 if found.bad else 0


def _tokens_path(args: argparse.Namespace, settings: Settings) -> Path:
    path: Path | None = args.file or settings.api_tokens_file
    if path is None:
        raise _UsageError("no tokens file: set NBO_API_TOKENS_FILE or pass --file")
    return path


class _UsageError(Exception):
    """A command cannot run as asked; the message is for the user."""


def _token_create(args: argparse.Namespace, settings: Settings) -> int:
    from app.commands.tokens import TokenCommandError, create_client
    from app.core.access import parse_scopes

    path = _tokens_path(args, settings)
    try:
        token = create_client(path, args.name, parse_scopes(args.scopes))
    except (TokenCommandError, ValueError) as exc:
        print(f"nbo token: {exc}", file=sys.stderr)
        return 2
    print(f"created client {args.name!r} in {path}; its token (shown once, keep it secret):")
    print(token)
    return 0


def _token_list(args: argparse.Namespace, settings: Settings) -> int:
    from app.commands.tokens import read_clients

    try:
        clients = read_clients(_tokens_path(args, settings))
    except ValueError as exc:
        print(f"nbo token: {exc}", file=sys.stderr)
        return 2
    for client in clients:
        print(f"{client.name}\t{','.join(sorted(s.value for s in client.scopes))}")
    return 0


def _token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from app.commands.tokens import TokenCommandError, revoke_client

    path = _tokens_path(args, settings)
    try:
        revoke_client(path, args.name)
    except (TokenCommandError, ValueError) as exc:
        print(f"nbo token: {exc}", file=sys.stderr)
        return 2
    print(f"revoked client {args.name!r}: workers refuse its token within a second")
    return 0


def _erasures_restore(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from app.clock import now_ms
    from app.commands.erasures import latest_erasures
    from app.commands.topic_source import read_topics_to_end
    from app.connections import kafka_client_kwargs, redis_client
    from app.storage.user_admin import RedisUserAdmin, user_admin_config

    async def restore() -> int:
        values: list[bytes | None] = []
        await read_topics_to_end(
            kafka_client_kwargs(settings),
            [settings.topic_privacy_audit],
            lambda _topic, _key, value: values.append(value),
            description="reading privacy-audit",
        )
        erasures = latest_erasures(values, now_ms(), settings.erasure_ttl_s)
        client = redis_client(settings)
        try:
            admin = RedisUserAdmin(client, user_admin_config(settings))
            for user_id, at_ms in erasures.items():
                await admin.erase(user_id, at_ms)
        finally:
            await client.aclose()
        return len(erasures)

    restored = asyncio.run(restore())
    print(f"restored {restored} erasure markers from {settings.topic_privacy_audit}")
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


def _chaos(args: argparse.Namespace, settings: Settings) -> int:
    from app.chaos.runner import ChaosOptions, run_chaos, run_order

    options = ChaosOptions.quick() if args.quick else ChaosOptions()
    names = [n.strip() for n in args.only.split(",")] if args.only else run_order()
    results = run_chaos(settings, options, names, args.json)
    return 0 if all(r.passed for r in results) else 1


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    from app.commands.simulate import SimulateError, SimulateOptions, run_simulate
    from app.commands.topic_source import TopicSourceError
    from app.core.calibration import CalibrationError
    from app.policy.config import PolicyError
    from app.simulation.replay import SimulationError

    options = SimulateOptions(
        events=args.events,
        from_topic=args.from_topic,
        hours=args.hours,
        max_events=args.max_events,
        items=args.items,
        offers=args.offers,
        consent=args.consent,
        policy=args.policy,
        weights=tuple(args.weight or ()),
        users=args.users,
        seed=args.seed,
        warmup_hours=args.warmup_hours,
        batch_size=args.batch_size,
        batch_span_ms=int(args.batch_span_s * 1000),
        examples=args.examples,
        json_path=args.json,
        plot=args.plot,
        progress=sys.stderr.isatty(),
    )
    try:
        report = run_simulate(settings, options)
    except (
        SimulateError, PolicyError, CalibrationError, SimulationError, TopicSourceError
    ) as exc:  # fmt: skip
        print(f"nbo simulate: {exc}", file=sys.stderr)
        return 2
    print(report.render())
    if args.json is not None:
        print(f"wrote {args.json}")
    if args.plot is not None:
        print(f"wrote {args.plot}")
    return 0


DESCRIPTION = """\
nbo-stream: real-time next-best offers. Behaviour events from Kafka update each person's
preference vector in Redis; the worker ranks the offer catalogue under the contact policy and
publishes next-best-offer messages for channel services.

Settings come from NBO_* environment variables (see the README's Configuration section).
"""

EPILOG = """\
examples:
  nbo stack up                          start a local Kafka and Redis (no Docker needed)
  nbo catalog load catalogue.jsonl      load items and offers
  nbo worker                            run the stream worker until Ctrl-C or SIGTERM
  nbo produce events.jsonl              send behaviour events, checked line by line first
  nbo tail --from-beginning --max 5     print next-best-offer messages
  nbo demo                              all of the above on a generated shop
  nbo simulate --events e.jsonl --offers o.jsonl --policy tight.toml
                                        a candidate policy against the one in force

'nbo COMMAND --help' tells more about each command.
"""


def add_command(
    sub: Any, name: str, summary: str, description: str, example: str
) -> argparse.ArgumentParser:
    """A sub-command whose --help says what it does and shows an example."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=summary,
        description=description,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


Extension = Callable[[Any], None]
"""Adds commands to ``nbo``'s sub-parsers (``nbo worker`` is added by :mod:`agents.cli`)."""


def build_parser(extensions: Sequence[Extension] = ()) -> argparse.ArgumentParser:
    """The argument parser of ``nbo``: the tools here, then ``extensions`` (exposed for
    tests and ``--help`` docs)."""
    parser = argparse.ArgumentParser(
        prog="nbo",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    stack = add_command(
        sub,
        "stack",
        "local Kafka + Redis without Docker",
        "Run a single-node Kafka broker and a Redis server on this machine, for trying nbo-stream"
        "\nand for its tests. The broker's jars are fetched once from Maven Central (needs Java"
        "\n17+ and Maven); data, logs and pid files live in NBO_STACK_DIR (.stack).",
        "nbo stack up && source .stack/env",
    )
    stack_sub = stack.add_subparsers(dest="stack_command", required=True, metavar="ACTION")
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
    browser = stack_sub.add_parser(
        "browser",
        help="the headless Chromium of the console's browser tests (apt-get install when root)",
    )
    browser.set_defaults(handler=_stack_browser)

    for extend in extensions:
        extend(sub)

    produce = add_command(
        sub,
        "produce",
        "send JSON lines of behaviour events to the events topic",
        "Send one behaviour event per line (UserEvent JSON, see docs/contracts.md), keyed by its"
        "\nuser_id. Every line is checked against the schema the worker uses first: bad lines are"
        "\nreported with their line number and reason, and then nothing is sent (exit 1) unless"
        "\n--skip-invalid is given, which sends the valid lines (and still exits 1).",
        "nbo produce events.jsonl",
    )
    produce.add_argument("file", type=Path, help="JSON lines, one event a line")
    produce.add_argument("--topic", help="another topic (default: NBO_TOPIC_USER_EVENTS)")
    produce.add_argument(
        "--skip-invalid", action="store_true", help="send the valid lines, report the rest"
    )
    produce.set_defaults(handler=_produce)

    catalog = add_command(
        sub,
        "catalog",
        "load the item and offer catalogues",
        "Load items and offers onto the catalogue topics; every worker follows them live.",
        "nbo catalog load catalogue.jsonl",
    )
    catalog_sub = catalog.add_subparsers(dest="catalog_command", required=True, metavar="ACTION")
    load = catalog_sub.add_parser(
        "load",
        help="JSON lines of items and offers onto the catalogue topics",
        description='One item ({"item_id": ...}) or offer ({"offer_id": ...}) a line;'
        ' {"offer_id": ..., "delete": true} deletes. Every line is checked against the'
        " schema the worker uses first: bad lines are reported with their line number and"
        " reason, and then nothing is sent (exit 1) unless --skip-invalid is given.",
    )
    load.add_argument("file", type=Path, help="JSON lines of items and offers")
    load.add_argument(
        "--skip-invalid", action="store_true", help="send the valid lines, report the rest"
    )
    load.set_defaults(handler=_catalog_load)

    tail = add_command(
        sub,
        "tail",
        "print next-best-offer messages as they arrive",
        "Print the messages of the offers topic, one JSON document a line, as channel services"
        "\nreceive them. Ends quietly when the reader of its output goes away.",
        "nbo tail --from-beginning --max 3 | jq .offers",
    )
    tail.add_argument("--topic", help="another topic (default: NBO_TOPIC_OFFERS)")
    tail.add_argument("--from-beginning", action="store_true", help="start at the oldest")
    tail.add_argument("--max", type=int, default=None, help="stop after this many")
    tail.add_argument("--idle-timeout", type=float, default=None, help="stop after idle seconds")
    tail.set_defaults(handler=_tail)

    demo = add_command(
        sub,
        "demo",
        "the whole pipeline on generated (or MovieLens) data",
        "Start the local stack, load a generated shop, run a worker, send realistic events and"
        "\nprint what it did: throughput, offers published, a few people with their interests"
        "\nand their offers with reasons.",
        "nbo demo --events 20000",
    )
    demo.add_argument("--events", type=int, default=50_000, help="generated events (50,000)")
    demo.add_argument("--movielens", type=Path, help="replay a MovieLens directory instead")
    demo.add_argument(
        "--keep-running",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep the worker up after the summary (default: when a terminal is attached)",
    )
    demo.set_defaults(handler=_demo)

    bench = add_command(
        sub,
        "bench",
        "measure the worker against raw Kafka and faust passthroughs",
        "Drain the same event stream with a raw aiokafka loop, a faust passthrough, a naive"
        "\nworker and the real worker, each in its own process, and report throughput, latency"
        "\nand memory with their ratios (docs/performance.md).",
        "nbo bench --quick --json bench.json",
    )
    bench.add_argument("--quick", action="store_true", help="small sizes, under two minutes")
    bench.add_argument("--events", type=int, help="events to drain (200,000)")
    bench.add_argument("--users", type=int, help="distinct users (10,000)")
    bench.add_argument("--offers", type=int, nargs="+", help="catalogue sizes (1000 10000 100000)")
    bench.add_argument("--batch-size", type=int, help="events per batch (500)")
    bench.add_argument("--json", type=Path, help="write every figure to this JSON file")
    bench.set_defaults(handler=_bench)

    chaos = add_command(
        sub,
        "chaos",
        "break the stack while events flow and account for every event",
        "On a private local stack (its own broker and Redis on free ports): worker kill -9"
        "\nand SIGTERM, workers joining and leaving, the broker and Redis stopped, killed,"
        "\nslowed, a failover to a lagging replica, poison records and a soak; per scenario"
        "\nevents produced, applied, lost, applied twice, dead-lettered, time to recover and"
        "\nunasked worker restarts (docs/operations.md, 'Reliability'). Exit 1 if any fails.",
        "nbo chaos --quick --only worker-kill,poison",
    )
    chaos.add_argument("--quick", action="store_true", help="tiny sizes and short outages")
    chaos.add_argument("--only", help="comma-separated scenarios (default: all, in order)")
    chaos.add_argument("--json", type=Path, help="write every figure to this JSON file")
    chaos.set_defaults(handler=_chaos)

    simulate = add_command(
        sub,
        "simulate",
        "what a candidate policy or weights would have sent, next to the current ones",
        "Replay a sample of recent traffic (an events file, or the last N hours of the events"
        "\ntopic) through the workers' own pipeline twice, with the configuration in force and"
        "\nwith the candidate, in memory: nothing is written to Redis or to any topic. Reports"
        "\nside by side with the difference: messages per channel per day, share of users"
        "\nreached, suppressions by reason, cap hits, offer mix, expected acceptances and the"
        "\nusers whose decisions change most (docs/simulation.md). Deterministic for a seed.",
        "nbo simulate --events events.jsonl --offers catalogue.jsonl --policy tight.toml"
        " --users 10000 --json sim.json --plot sim.png",
    )
    simulate.add_argument("--events", type=Path, metavar="FILE", help="UserEvent JSON lines")
    simulate.add_argument(
        "--from-topic",
        action="store_true",
        help="also replay the events topic (with --hours), read without committing anything;"
        " consent records then come from the consent topic too",
    )
    simulate.add_argument(
        "--hours", type=float, metavar="N", help="with --from-topic: the last N hours (event time)"
    )
    simulate.add_argument(
        "--max-events",
        type=int,
        metavar="N",
        help="with --from-topic: replay at most N events of those hours, the newest",
    )
    simulate.add_argument(
        "--items", type=Path, metavar="FILE", help="item JSON lines (default: the catalogue topics)"
    )
    simulate.add_argument(
        "--offers",
        type=Path,
        metavar="FILE",
        help="offer JSON lines, or items and offers together (default: the catalogue topics)",
    )
    simulate.add_argument(
        "--consent",
        type=Path,
        metavar="FILE",
        help="ConsentRecord JSON lines in force at the start (default: the policy's defaults)",
    )
    simulate.add_argument("--policy", type=Path, metavar="FILE", help="the candidate policy TOML")
    simulate.add_argument(
        "--weight",
        action="append",
        metavar="NAME=NUMBER",
        help="a candidate score weight, e.g. w_value=0.3 (repeat for several)",
    )
    simulate.add_argument("--users", type=int, metavar="N", help="sample N users (default all)")
    simulate.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    simulate.add_argument(
        "--warmup-hours",
        type=float,
        metavar="H",
        help="event time replayed first but not counted (default: a quarter of the sample)",
    )
    simulate.add_argument(
        "--batch-size", type=int, metavar="N", help="events per batch (default NBO_BATCH_SIZE)"
    )
    simulate.add_argument(
        "--batch-span-s",
        type=float,
        default=60.0,
        metavar="S",
        help="event time one batch may span, seconds (default 60)",
    )
    simulate.add_argument(
        "--examples", type=int, default=5, metavar="N", help="changed users shown (default 5)"
    )
    simulate.add_argument("--json", type=Path, metavar="PATH", help="write the report as JSON")
    simulate.add_argument("--plot", type=Path, metavar="PATH", help="write a PNG of the report")
    simulate.set_defaults(handler=_simulate)

    erasures = add_command(
        sub,
        "erasures",
        "restore erasure markers from the privacy-audit topic",
        "Before replaying the events into an empty Redis (docs/operations.md, 'Rebuilding"
        "\nRedis'), write every erased person's marker again from privacy-audit, so the"
        "\nreplay cannot bring them back. Run it with the workers paused.",
        "nbo erasures restore",
    )
    erasures_sub = erasures.add_subparsers(dest="erasures_command", required=True, metavar="ACTION")
    restore = erasures_sub.add_parser(
        "restore", help="write the markers of every erasure still within NBO_ERASURE_TTL_S"
    )
    restore.set_defaults(handler=_erasures_restore)

    token = add_command(
        sub,
        "token",
        "manage the API clients of the lookups",
        "Create, list and revoke the clients that may read /users/... on the workers. The"
        "\nfile (NBO_API_TOKENS_FILE, or --file) keeps each token's SHA-256, never the token:"
        "\n'create' prints the new token once, alone on its last line. Workers reread the"
        "\nfile within a second of a change. Scopes: offers:read, profile:read, decisions:read,"
        "\nconsole (the web console, nbo console).",
        "nbo token create push-service --scopes offers:read",
    )
    token.add_argument("--file", type=Path, help="the tokens file (default NBO_API_TOKENS_FILE)")
    token_sub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = token_sub.add_parser("create", help="a new client and its token")
    create.add_argument("name", help="the client's name (letters, digits, . _ -)")
    create.add_argument("--scopes", required=True, help="comma-separated, e.g. offers:read")
    create.set_defaults(handler=_token_create)
    token_sub.add_parser("list", help="every client with its scopes").set_defaults(
        handler=_token_list
    )
    revoke = token_sub.add_parser("revoke", help="remove a client: its token stops working")
    revoke.add_argument("name")
    revoke.set_defaults(handler=_token_revoke)

    from app.commands.learning_cli import register_learning_commands

    register_learning_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None, extensions: Sequence[Extension] = ()) -> int:
    """Run ``nbo`` with the tools here and ``extensions``; returns the process exit code."""
    parser = build_parser(extensions)
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
    except BrokenPipeError:
        # the reader of our output went away (`nbo tail | head -n 3`): end quietly, and point
        # stdout at /dev/null so the interpreter's final flush does not fail once more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except StackError as exc:
        print(f"nbo: {exc}", file=sys.stderr)
        return 2
    except _UsageError as exc:
        print(f"nbo: {exc}", file=sys.stderr)
        return 2
    except ConnectionProblem as exc:
        print(f"nbo: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    raise SystemExit(main())
