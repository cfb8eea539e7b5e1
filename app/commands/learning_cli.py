"""Sub-commands of the learning loop (``nbo embed``, ``nbo evaluate``), registered on ``nbo``.

Heavy modules (numpy, scipy, matplotlib, aiokafka) are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from app.settings import Settings

METHOD_NAMES = ("engine_tags", "engine_collab", "popularity", "random", "batch_model",
                "popularity_positive", "ease", "ease_recency", "item_knn")  # fmt: skip
"""Names accepted by ``nbo evaluate --methods`` (same as ``app.evaluation.config.METHODS``)."""


def _days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        days = -1.0
    if not days > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of days, got {text!r}")
    return days


def _add_source(parser: argparse.ArgumentParser) -> Any:
    """The source options of ``embed`` and ``evaluate``; returns the group of sources."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--movielens", type=Path, metavar="DIR", help="a MovieLens directory")
    source.add_argument("--events", type=Path, metavar="FILE", help="UserEvent JSON lines")
    source.add_argument(
        "--from-topic",
        action="store_true",
        help="the events topic (NBO_TOPIC_USER_EVENTS) and the items of the item-catalog topic"
        " (NBO_TOPIC_ITEM_CATALOG), read in full up to their end at start",
    )
    parser.add_argument(
        "--catalog",
        type=Path,
        metavar="FILE",
        help="Item/Offer JSON lines for --events or --from-topic (default: --events: items from"
        " the events' tags; --from-topic: the item-catalog topic, then the events' tags)",
    )
    parser.add_argument(
        "--since-days",
        type=_days,
        metavar="N",
        help="with --from-topic: only events of the last N days by event time (default all)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    return source


class SourceError(ValueError):
    """Source options that do not fit together (the message is for the command line)."""


def _source(args: argparse.Namespace, settings: Settings) -> Any:
    from app.commands.embed import LearningSource
    from app.commands.topic_source import TopicSource

    if args.since_days is not None and not args.from_topic:
        raise SourceError("--since-days needs --from-topic")
    topics = (
        TopicSource.from_settings(settings, since_days=args.since_days) if args.from_topic else None
    )
    return LearningSource(
        movielens=args.movielens, events=args.events, catalog=args.catalog, topics=topics
    )


def _embed(args: argparse.Namespace, settings: Settings) -> int:
    from app.commands.embed import run_embed
    from app.commands.topic_source import TopicSourceError

    if not args.publish and args.output is None:
        print("nbo embed: nothing to do: give --publish and/or --output FILE", file=sys.stderr)
        return 2
    try:
        summary = run_embed(
            settings,
            _source(args, settings),
            args.publish,
            args.output,
            seed=args.seed,
            neighbours=args.neighbours,
        )
    except (SourceError, TopicSourceError) as exc:
        print(f"nbo embed: {exc}", file=sys.stderr)
        return 2
    print(
        f"learned {summary.n_vectors} item vectors (D={settings.vector_dim}) of "
        f"{summary.n_items} items from {summary.n_events} events in {summary.seconds:.1f} s"
    )
    if summary.rejected:
        print(f"skipped {summary.rejected} undecodable events")
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
    from app.commands.evaluate import (
        EvaluateError,
        EvaluateOptions,
        run_evaluate,
        run_restock_evaluation,
    )
    from app.commands.topic_source import TopicSourceError

    if args.restock:
        run_restock_evaluation(
            settings, report=args.report, write_log=args.write_log, seed=args.seed
        )
        return 0

    options = EvaluateOptions(
        report=args.report,
        plot=args.plot,
        seed=args.seed,
        k_max=args.k_max,
        methods=args.methods,
        tune=args.tune,
        write_calibration=args.write_calibration,
        model_version=args.model_version,
        retrain_days=args.retrain_days,
    )
    try:
        run_evaluate(settings, _source(args, settings), options)
    except (SourceError, TopicSourceError, EvaluateError) as exc:
        print(f"nbo evaluate: {exc}", file=sys.stderr)
        return 2
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
    sources = _add_source(evaluate)
    sources.add_argument(
        "--restock",
        action="store_true",
        help="the synthetic shop with planted repurchase cycles: HitRate@10 on repeat purchases"
        " with purchased items excluded, always included, or back when due (restock)",
    )
    evaluate.add_argument(
        "--write-log",
        type=Path,
        metavar="FILE",
        help="with --restock: also write the generated log (UserEvent JSON lines) and its items"
        " (catalog.jsonl beside it)",
    )
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
    evaluate.add_argument(
        "--write-calibration",
        type=Path,
        metavar="PATH",
        help="write engine_collab's match calibration (fitted on the validation period) for"
        " the workers' NBO_CALIBRATION_PATH",
    )
    evaluate.add_argument(
        "--model-version",
        metavar="NAME",
        help="the NBO_MODEL_VERSION the workers run the collaborative model under, written"
        " into the calibration (default collab-v1)",
    )
    evaluate.add_argument(
        "--retrain-days",
        type=float,
        metavar="DAYS",
        help="relearn engine_collab's model and the item-item baselines' weights every DAYS"
        " days of event time during the test period, as the nightly `nbo embed` does (default:"
        " every model frozen at the split)",
    )
    evaluate.set_defaults(handler=_evaluate)
