"""The ceiling: a raw aiokafka consume -> produce passthrough with no processing.

Run as a child process (``python -m app.bench.raw``) so that it is measured like the worker:
the same broker, the same messages, its own process. It commits offsets after each batch has
been acknowledged, like the worker. Drain mode (``--expect N``) prints one JSON line
``{"count", "first_ms", "done_ms"}`` and exits; without ``--expect`` it runs until SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from app.bench.measure import own_peak_rss_bytes, passthrough_parser


def _now_ms() -> float:
    return time.time() * 1000


async def passthrough(
    bootstrap: str, source: str, sink: str, group: str, expect: int | None, batch: int
) -> dict[str, Any]:
    """Copy ``source`` to ``sink`` until ``expect`` records (or forever); returns timings."""
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=batch,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=1)
    await consumer.start()
    await producer.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    count, first_ms = 0, 0.0
    try:
        while not stop.is_set() and (expect is None or count < expect):
            batches = await consumer.getmany(timeout_ms=200, max_records=batch)
            if not batches:
                continue
            if not first_ms:
                first_ms = _now_ms()
            pending = [
                await producer.send(sink, value=m.value, key=m.key)
                for records in batches.values()
                for m in records
            ]
            await asyncio.gather(*pending)
            await consumer.commit()
            count += len(pending)
    finally:
        await producer.stop()
        await consumer.stop()
    return {
        "count": count,
        "first_ms": first_ms,
        "done_ms": _now_ms(),
        "peak_rss_bytes": own_peak_rss_bytes(),
    }


def main(argv: Sequence[str] | None = None) -> None:
    args = passthrough_parser("python -m app.bench.raw").parse_args(argv)
    result = asyncio.run(
        passthrough(args.bootstrap, args.source, args.sink, args.group, args.expect, args.batch)
    )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
