"""The user-events agent: whole fetches of raw records into the pipeline, retried until durable,
then acknowledged in bulk.

The consumer delivers ``user-events`` as whole fetches (:mod:`agents.fetches`): the agent gathers
those that are ready (up to ``NBO_BATCH_SIZE`` records, lingering at most ``NBO_BATCH_WITHIN_S``
for more), drops those of an earlier consumer generation unacknowledged, processes the rest as
one batch and only then acknowledges their records. A faust event (another transport, or
``agent.test_context``) is processed on its own and acknowledged by faust.

``concurrency=1`` per worker (faust-streaming's offset commit is unsafe with more); the worker
scales by partitions. Errors are caught inside the loop: faust would acknowledge a batch whose
handler raised. A batch that fails because Redis or the broker is unavailable is retried with
capped exponential backoff (0.1 s doubling to 5 s), so the stream waits and nothing is dropped;
the batch is acknowledged only after it was processed. A record that makes processing fail for
good is isolated and dead-lettered with the exception's class and message
(:meth:`BatchProcessor.process_isolating`), so it cannot stall its partition.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agents.fetches import FetchedBatch, gather_fetches, is_current, release, settle
from agents.heap import freeze_heap
from agents.stream import inbound, positions, until_done
from app.pipeline.records import InboundRecord
from app.pipeline.stats import BatchStats

if TYPE_CHECKING:
    from agents.worker import Worker

log = logging.getLogger(__name__)


async def process_until_done(worker: Worker, records: Sequence[InboundRecord]) -> None:
    """Process ``records``, retrying the whole batch with capped backoff until it succeeds."""
    started = time.perf_counter()

    async def process() -> BatchStats:
        nonlocal started
        started = time.perf_counter()
        return await worker.processor.process_isolating(records)

    stats = await until_done(
        process, f"batch of {len(records)}", worker.metrics.batch_retries.inc, positions(records)
    )
    worker.metrics.record_batch(stats, time.perf_counter() - started)
    worker.metrics.store_round_trips.set(worker.store.round_trips)


async def process_fetches(worker: Worker, first: FetchedBatch, queue: Any) -> None:
    """Gather the fetches ready behind ``first``, process the current ones as one batch,
    acknowledge them; release the stale ones unprocessed."""
    settings, app = worker.settings, worker.app
    gathered = await gather_fetches(
        first, queue, app.consumer, settings.batch_size, settings.batch_within_s
    )
    current = []
    for batch in gathered:
        if is_current(batch, app):
            current.append(batch)
        else:
            release(batch, app.consumer)
    if current:
        await process_until_done(worker, [r for batch in current for r in batch.records()])
        settle(current, app.consumer)


def register_event_agent(worker: Worker) -> None:
    """Register the agent on ``worker.app``'s user-events topic."""
    settings = worker.settings
    topic = worker.app.topic(
        settings.topic_user_events,
        partitions=settings.user_events_partitions,
        key_serializer="raw",
        value_serializer="raw",
    )
    worker.app.deliver_whole_fetches(topic, max_batches=settings.queued_fetches)

    async def process_events(stream: Any) -> None:
        await worker.feed.ready.wait()
        worker.processor.warm_up()
        freeze_heap()  # the catalogue and the machinery stay: no collection walks them again
        queue = stream.channel.queue
        fetches = worker.metrics.event_deliveries.labels(shape="fetch")
        records = worker.metrics.event_deliveries.labels(shape="record")
        async for item in stream:
            if isinstance(item, FetchedBatch):
                fetches.inc()
                await process_fetches(worker, item, queue)
            else:  # a faust event: processed alone, acknowledged by faust after this body
                records.inc()
                await process_until_done(worker, inbound([stream.current_event]))

    worker.app.agent(topic, name="nbo.process-events", concurrency=1)(process_events)
