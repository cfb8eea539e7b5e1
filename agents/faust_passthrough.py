"""The framework's ceiling: the worker's faust app and agent shape with no processing.

Copies every record of the source to the sink through the same faust configuration as the
worker (:class:`agents.batch_delivery.App`, ``take_events(batch, within=...)``, ``concurrency=1``,
the app's producer with one gather per batch, at-least-once commits). It shows how much of the
gap between the worker and the raw aiokafka passthrough is faust's own per-record cost, not the
pipeline's. Output and modes as :mod:`app.bench.raw` (``--expect N`` prints one JSON line).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Sequence
from typing import Any

import faust

from agents.batch_delivery import App
from app.bench.measure import own_peak_rss_bytes, passthrough_parser


def build_app(args: argparse.Namespace) -> Any:
    """The passthrough app (no network until the worker starts)."""
    app = App(
        args.group,
        broker=f"kafka://{args.bootstrap}",
        store="memory://",
        autodiscover=False,
        key_serializer="raw",
        value_serializer="raw",
        topic_allow_declare=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        processing_guarantee="at_least_once",
        web_enabled=False,
    )
    source = app.topic(args.source, key_serializer="raw", value_serializer="raw")
    state = {"count": 0, "first_ms": 0.0}

    async def copy(stream: Any) -> None:
        async for events in stream.take_events(args.batch, within=args.within_s):
            if not state["first_ms"]:
                state["first_ms"] = time.time() * 1000
            pending = [
                await app.producer.send(args.sink, e.message.key, e.message.value, None, None, None)
                for e in events
            ]
            await asyncio.gather(*pending)
            state["count"] += len(events)
            if args.expect is not None and state["count"] >= args.expect:
                result = {**state, "done_ms": time.time() * 1000,
                          "peak_rss_bytes": own_peak_rss_bytes()}  # fmt: skip
                # straight to fd 1: faust redirects sys.stdout into its log
                os.write(1, ("\n" + json.dumps(result) + "\n").encode())
                os._exit(0)  # drain mode: the figures are out, no graceful shutdown to time

    app.agent(source, name="nbo.bench.faust-passthrough", concurrency=1)(copy)
    return app


def main(argv: Sequence[str] | None = None) -> None:
    parser = passthrough_parser("python -m agents.faust_passthrough")
    parser.add_argument("--within-s", type=float, default=0.05)
    args = parser.parse_args(argv)
    faust.Worker(build_app(args), loglevel="warn", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
