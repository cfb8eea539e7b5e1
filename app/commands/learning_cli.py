"""Sub-commands of the learning loop (``nbo embed``, ``nbo evaluate``), registered on ``nbo``.

Heavy modules (numpy, scipy, matplotlib, aiokafka) are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from app.settings import Settings

METHOD_NAMES = ("engine_tags", "engine_collab", "popularity", "random", "batch_model")
"""Names accepted by ``nbo evaluate --methods`` (same as ``app.evaluation.config.METHODS``)."""


def _add_source(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--movielens", type=Path, metavar="DIR", help="a MovieLens directory")
    source.add_argument("--events", type=Path, metavar="FILE", help="UserEvent JSON lines")
    parser.add_argument(
        "--catalog",
        type=Path,
        metavar="FILE",
        help="Item/Offer JSON lines for --events (default: items from the events' tags)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def _source(args: argparse.Namespace) -> Any:
    from app.commands.embed import LearningSource

    return LearningSource(movielens=args.movielens, events=args.events, catalog=args.catalog)


def _embed(args: argparse.Namespace, settings: Settings) -> int:
    from app.commands.embed import run_embed

    if not args.publish and args.output is None:
        print("nbo embed: nothing to do: give --publish and/or --output FILE", file=sys.stderr)
        return 2
    summary = run_embed(
        settings,
        _source(args),
        args.publish,
        args.output,
        seed=args.seed,
        neighbours=args.neighbours,
    )
    print(
        f"learned {summary.n_vectors} item vectors (D={settings.vector_dim}) of "
        f"{summary.n_items} items from {summary.n_events} events in {summary.seconds:.1f} s"
    )
    if args.output is not None:
        print(f"wrote {summary.written} item records to {args.output}")
    if args.neighbours is not None:
        print(f"wrote {summary.neighbours_written} neighbour records to {args.neighbours}")
    if args.publish:
        print(f"published {summary.published} item records to {settings.topic_item_catalog}")
        print(
            f"published {summary.neighbours_published} neighbour records (tombstones for items"
            f" without neighbours) to {settings.topic_item_neighbours}"
        )
    return 0


def _methods(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in METHOD_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown methods {unknown}; choose from {', '.join(METHOD_NAMES)}"
        )
    return names


def _evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from app.commands.evaluate import EvaluateOptions, run_evaluate

    options = EvaluateOptions(
        report=args.report,
        plot=args.plot,
        seed=args.seed,
        k_max=args.k_max,
        methods=args.methods,
        tune=args.tune,
    )
    run_evaluate(settings, _source(args), options)
    return 0


def register_learning_commands(sub: Any) -> None:
    """Add ``embed`` and ``evaluate`` to ``nbo``'s sub-parsers (``sub``)."""
    embed = sub.add_parser(
        "embed",
        help="learn collaborative item vectors and publish them as item-catalog updates",
    )
    _add_source(embed)
    embed.add_argument(
        "--publish",
        action="store_true",
        help="send the Item records to the item-catalog topic and the co-occurrence neighbours"
        " to the item-neighbours topic",
    )
    embed.add_argument("--output", type=Path, metavar="FILE", help="write Item JSON lines")
    embed.add_argument(
        "--neighbours",
        type=Path,
        metavar="FILE",
        help="also write the co-occurrence neighbours of each item (JSON lines)",
    )
    embed.set_defaults(handler=_embed)

    evaluate = sub.add_parser(
        "evaluate", help="offline replay: the engine against popularity, random, a batch model"
    )
    _add_source(evaluate)
    evaluate.add_argument("--report", type=Path, metavar="PATH", help="write the JSON report")
    evaluate.add_argument("--plot", type=Path, metavar="PATH", help="write HitRate@K as PNG")
    evaluate.add_argument(
        "--k-max", type=int, default=20, metavar="K", help="longest list measured (default 20)"
    )
    evaluate.add_argument(
        "--methods",
        type=_methods,
        default=METHOD_NAMES,
        metavar="A,B",
        help=f"comma-separated subset of {','.join(METHOD_NAMES)} (default all)",
    )
    evaluate.add_argument(
        "--tune",
        action="store_true",
        help="tune engine_collab on a validation period first (several minutes)",
    )
    evaluate.set_defaults(handler=_evaluate)
