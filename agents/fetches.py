"""Whole fetches as stream items: what the consumer puts on the agent's queue, and how the agent
gathers, settles or drops them.

For a topic marked with :meth:`agents.batch_delivery.App.deliver_whole_fetches`, the consumer puts
ONE :class:`FetchedBatch` per fetch on the agent's queue instead of one faust event per record
(faust's per-record stream machinery costs more than the whole pipeline's budget per record).
As with faust's own events, its records become in flight when the agent takes the batch
(:func:`take`), so a rebalance's ``wait_empty`` waits for what the agent holds; batches still
queued are not waited for (the agent could not reach them: a rebalance waits while the agent
finishes its batch) and faust clears the queue when the flow resumes. The agent:

- gathers what is ready (:func:`gather_fetches`): the batch it got, the batches already queued
  behind it, and what arrives within ``within_s`` of the first, as long as they fit in
  ``max_records`` (the same rule as ``take_events(max, within)``, so Redis round trips per
  event stay bounded at low load);
- processes the records and only then acknowledges them in bulk (:func:`settle`): the committed
  offset never passes a record whose state is not durable;
- drops a batch fetched by an earlier consumer generation or queued while the flow is stopped
  for a rebalance (:func:`release`): it is no longer in flight, and nothing of it is acknowledged,
  so its records are fetched again from the committed offset by whoever owns the partition now.
  (faust acknowledges the events it skips for these reasons; a skipped record of a partition that
  comes back to the same worker could then be committed unprocessed.)

The stream yields a :class:`FetchedBatch` as a plain value: it is not a faust event, so the
stream itself neither tracks nor acknowledges it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mode.utils.futures import notify

from app.pipeline.records import InboundRecord

POLL_SLICES = 5
"""How many times the agent looks at its queue while it lingers for more records."""


@dataclass(eq=False, slots=True)
class FetchedBatch:
    """The records of one fetch for one channel, in fetch order, and the consumer generation
    that fetched them."""

    messages: Sequence[Any]
    generation: int

    def records(self) -> list[InboundRecord]:
        """The raw records (topic, partition, offset, key, value) of the batch."""
        return [
            InboundRecord(
                topic=m.topic, partition=m.partition, offset=m.offset, key=m.key, value=m.value
            )
            for m in self.messages
        ]


def take(batch: FetchedBatch, consumer: Any) -> FetchedBatch:
    """Mark the records of ``batch`` in flight (the agent holds them): a rebalance's
    ``wait_empty`` waits until they are settled or released."""
    in_flight = consumer._unacked_messages
    for message in batch.messages:
        in_flight.add(message)
    return batch


def is_current(batch: FetchedBatch, app: Any) -> bool:
    """True when ``batch`` may be processed: fetched by the current consumer generation, and
    the flow not stopped for a rebalance."""
    return bool(app.flow_control.is_active() and batch.generation == app.consumer_generation_id)


def settle(batches: Sequence[FetchedBatch], consumer: Any) -> None:
    """Acknowledge every record of ``batches`` (after they were processed): each offset becomes
    committable and the records are no longer in flight."""
    ack = consumer.ack
    for batch in batches:
        for message in batch.messages:
            ack(message)


def release(batch: FetchedBatch, consumer: Any) -> None:
    """Drop ``batch`` unprocessed: its records are no longer in flight, and none is
    acknowledged, so the committed offset stays before them."""
    in_flight = consumer._unacked_messages
    for message in batch.messages:
        in_flight.discard(message)
    notify(consumer._waiting_for_ack)  # a rebalance's wait_empty may be waiting for these


def take_ready(queue: Any, room: int, consumer: Any) -> list[FetchedBatch]:
    """The whole fetches at the head of ``queue`` that fit in ``room`` records, taken
    (:func:`take`) without waiting; stops at the first that does not fit or is something else
    (left in place)."""
    taken: list[FetchedBatch] = []
    items = queue._queue  # asyncio.Queue's deque: look at the head before taking it
    while items and isinstance(items[0], FetchedBatch) and len(items[0].messages) <= room:
        batch = take(queue.get_nowait(), consumer)
        taken.append(batch)
        room -= len(batch.messages)
    return taken


async def gather_fetches(
    first: FetchedBatch,
    queue: Any,
    consumer: Any,
    max_records: int,
    within_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> list[FetchedBatch]:
    """``first`` and the fetches queued behind it, all taken (:func:`take`): those ready, then
    those that arrive until ``within_s`` after ``first``, as long as they fit in
    ``max_records`` records (a fetch is never split; the consumer fetches at most
    ``NBO_BATCH_SIZE`` records at a time, so ``first`` fits). Returns at once when the next
    fetch is queued but does not fit."""
    gathered = [take(first, consumer)]
    count = len(first.messages)
    deadline = clock() + within_s
    while True:
        for batch in take_ready(queue, max_records - count, consumer):
            gathered.append(batch)
            count += len(batch.messages)
        remaining = deadline - clock()
        if count >= max_records or remaining <= 0 or not queue.empty():
            return gathered
        await asyncio.sleep(min(remaining, within_s / POLL_SLICES))
