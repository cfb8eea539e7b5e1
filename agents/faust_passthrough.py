"""The framework's ceiling: the worker's faust app and agent shape with no processing.

Copies every record of the source to the sink through the same faust configuration and
consumption path as the worker (:class:`agents.batch_delivery.App` delivering whole fetches of
at most ``batch`` records, :func:`agents.fetches.gather_fetches` with ``within``, ``concurrency=1``,
the app's producer with one gather per batch, acknowledgements in bulk after it, at-least-once
commits). It shows how much of the gap between the worker and the raw aiokafka passthrough is
the framework's, not the pipeline's. Output and modes as :mod:`app.bench.raw` (``--expect N``
prints one JSON line).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Sequence
from typing import Any

from agents.batch_delivery import App
from agents.faust_worker import faust_worker
from agents.fetches import FetchedBatch, gather_fetches, settle
from app.bench.measure import own_peak_rss_bytes, passthrough_parser
from app.settings import Settings


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
        broker_max_poll_records=args.batch,
        web_enabled=False,
    )
    source = app.topic(args.source, key_serializer="raw", value_serializer="raw")
    app.deliver_whole_fetches(source, max_batches=args.queued_fetches)
    state = {"count": 0, "first_ms": 0.0}

    async def copy(stream: Any) -> None:
        queue = stream.channel.queue
        async for first in stream:
            assert isinstance(first, FetchedBatch)
            if not state["first_ms"]:
                state["first_ms"] = time.time() * 1000
            fetches = await gather_fetches(first, queue, app.consumer, args.batch, args.within_s)
            messages = [m for batch in fetches for m in batch.messages]
            pending = [
                await app.producer.send(args.sink, m.key, m.value, None, None, None)
                for m in messages
            ]
            await asyncio.gather(*pending)
            settle(fetches, app.consumer)
            state["count"] += len(messages)
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
    defaults = Settings.model_fields  # the worker's own defaults
    parser.add_argument("--within-s", type=float, default=defaults["batch_within_s"].default)
    parser.add_argument("--queued-fetches", type=int, default=defaults["queued_fetches"].default)
    args = parser.parse_args(argv)
    faust_worker(build_app(args), "warn", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
