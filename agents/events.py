"""The user-events agent: batches of raw records into the pipeline, retried until durable.

``concurrency=1`` per worker (faust-streaming's offset commit is unsafe with more); the worker
scales by partitions. Errors are caught inside the loop: faust would acknowledge a batch whose
handler raised. A batch that fails because Redis or the broker is unavailable is retried with
capped exponential backoff (0.1 s doubling to 5 s), so the stream waits and nothing is dropped;
the batch is acknowledged only after :meth:`BatchProcessor.process` returned.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agents.heap import freeze_heap
from app.pipeline.records import InboundRecord

if TYPE_CHECKING:
    from agents.app import Worker

log = logging.getLogger(__name__)

BACKOFF_START_S = 0.1
BACKOFF_MAX_S = 5.0


async def process_until_done(worker: Worker, records: Sequence[InboundRecord]) -> None:
    """Process ``records``, retrying the whole batch with capped backoff until it succeeds."""
    delay = BACKOFF_START_S
    while True:
        started = time.perf_counter()
        try:
            stats = await worker.processor.process(records)
        except Exception as exc:  # retried, never dropped: the batch is not acked yet
            worker.metrics.batch_retries.inc()
            log.warning(
                "batch of %d failed (%s: %s); retrying in %.1f s",
                len(records),
                type(exc).__name__,
                exc,
                delay,
                extra=positions(records),
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)
            continue
        worker.metrics.record_batch(stats, time.perf_counter() - started)
        worker.metrics.store_round_trips.set(worker.store.round_trips)
        return


def positions(records: Sequence[InboundRecord]) -> dict[str, str]:
    """Log fields naming the records of a batch: topic, partitions and offset ranges."""
    spans: dict[int, tuple[int, int]] = {}
    for r in records:
        low, high = spans.get(r.partition, (r.offset, r.offset))
        spans[r.partition] = (min(low, r.offset), max(high, r.offset))
    return {
        "topic": records[0].topic if records else "",
        "offsets": ",".join(f"{p}:{lo}-{hi}" for p, (lo, hi) in sorted(spans.items())),
    }


def register_event_agent(worker: Worker) -> None:
    """Register the agent on ``worker.app``'s user-events topic."""
    settings = worker.settings
    topic = worker.app.topic(
        settings.topic_user_events,
        partitions=settings.user_events_partitions,
        key_serializer="raw",
        value_serializer="raw",
    )

    async def process_events(stream: Any) -> None:
        await worker.feed.ready.wait()
        worker.processor.warm_up()
        freeze_heap()  # the catalogue and the machinery stay: no collection walks them again
        async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):
            records = [
                InboundRecord(
                    topic=e.message.topic,
                    partition=e.message.partition,
                    offset=e.message.offset,
                    key=e.message.key,
                    value=e.message.value,
                )
                for e in events
            ]
            await process_until_done(worker, records)

    worker.app.agent(topic, name="nbo.process-events", concurrency=1)(process_events)
