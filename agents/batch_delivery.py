"""A faust consumer that hands each fetched batch to the streams in one task, not one per record.

faust-streaming 0.15.3's ``Consumer._drain_messages`` delivers every record through
``Service.wait_first(callback(message), suspend_flow.wait())``: four ``ensure_future`` calls, an
``asyncio.wait`` and three cancellations per record, so that a rebalance (which sets
``suspend_flow``) can interrupt a delivery blocked on a full stream buffer. Measured here, that
costs about half of faust's per-record overhead (a no-op agent drains 8-10k records/s with it and
13-15k/s without, on the same topic).

:class:`BatchDeliveryConsumer` keeps every rule of the original loop (read offsets, gap tracking
for acks, ``broker_commit_every``, a yield to the event loop every 100 records, stopping when the
flow stops or the consumer generation changes) but wraps one ``wait_first`` around the delivery of
the whole batch ``getmany`` returned. A rebalance still interrupts a blocked delivery; records not
delivered are not marked read, exactly as before, and are fetched again after the seek to the
committed offsets.

For the topics an app marks with :meth:`App.deliver_whole_fetches` it goes one step further
(:func:`deliver_whole`): the records of each fetch become ONE stream item, a
:class:`agents.fetches.FetchedBatch` put on the queue of the channel that subscribes to them,
its records in flight from the moment the agent takes it until it acknowledges them in bulk.
faust's per-record stream machinery (an event object, a sensor round, an ack each) is then paid
once per fetch.

The override replaces a private method of a pinned version; ``tests/agents`` checks that the
original's source is the one this was written against, so an upgrade fails loudly instead of
silently running a stale copy.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
from faust.transport import by_url
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka

from agents.fetches import FetchedBatch

YIELD_EVERY = 100
"""Records delivered between two yields to the event loop (faust's own value)."""

ORIGINAL_DRAIN_SHA256 = "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417"
"""sha256 of the source of faust-streaming 0.15.3's ``Consumer._drain_messages``, which
:class:`BatchDeliveryConsumer` replaces."""


async def deliver_batch(consumer: Any, batch: Sequence[tuple[Any, Any]], generation: int) -> int:
    """Deliver ``batch`` (``(tp, message)`` pairs in fetch order) to the consumer's callback.

    Skips records below the partition's read offset (already delivered), registers offset gaps
    for acknowledgement, commits every ``broker_commit_every`` acks, and stops early if the flow
    stops or the consumer generation changes. Returns the number of records delivered.
    """
    callback: Callable[[Any], Awaitable[Any]] = consumer.callback
    read_offsets = consumer._read_offset
    delivered = 0
    since_yield = 0
    for tp, message in batch:
        if not consumer.flow_active or consumer.app.consumer_generation_id != generation:
            break
        since_yield += 1
        if since_yield > YIELD_EVERY:
            await asyncio.sleep(0)
            since_yield = 0
        if not await admit(consumer, tp, message, read_offsets[tp]):
            continue
        await callback(message)
        read_offsets[tp] = message.offset
        delivered += 1
    return delivered


async def admit(consumer: Any, tp: Any, message: Any, read: int | None) -> bool:
    """faust's rules for one fetched record, ``read`` its partition's read offset: False if it
    lies below (already delivered); else registers an offset gap for acknowledgement and
    commits every ``broker_commit_every`` acks, and returns True."""
    offset = message.offset
    if read is not None and offset < read:
        return False
    if offset - (read or 0) > 1 and read and consumer.app.topics.acks_enabled_for(message.topic):
        await consumer._add_gap(tp, read + 1, offset)
    commit_every = consumer._commit_every
    if commit_every is not None and consumer._n_acked >= commit_every:
        consumer._n_acked = 0
        await consumer.commit()
    return True


async def deliver_whole(consumer: Any, batch: Sequence[tuple[Any, Any]], generation: int) -> int:
    """Deliver ``batch`` as one :class:`FetchedBatch` per subscribing channel.

    The same rules as :func:`deliver_batch` (records below the read offset skipped, gaps
    registered, commits every ``broker_commit_every`` acks, nothing delivered once the flow
    stops or the generation changes), then one put per channel (waiting, like faust's own
    delivery, for the producer's buffer to ebb and for room in the queue). Only once a batch is
    queued are its records marked read; a put interrupted by a rebalance leaves them unread, to
    be fetched again after the seek. As for faust's events, the records become in flight when
    the agent takes the batch (:func:`agents.fetches.take`), not while it waits in the queue:
    a rebalance waits for what the agent holds, and drops what is queued. A partition with other
    than exactly one subscriber is delivered record by record. Returns the records delivered.
    """
    read_offsets = consumer._read_offset
    channels_of = consumer.app.topics._tp_index
    groups: dict[int, tuple[Any, list[Any]]] = {}
    singles: list[tuple[Any, Any]] = []
    latest: dict[Any, int | None] = {}  # read offsets within this fetch, before the put
    for tp, message in batch:
        if not consumer.flow_active or consumer.app.consumer_generation_id != generation:
            return 0
        channels: Any = channels_of.get(tp) or ()
        if len(channels) != 1:  # deliver_batch applies the rules to these
            singles.append((tp, message))
            continue
        if not await admit(consumer, tp, message, latest.get(tp, read_offsets[tp])):
            continue
        latest[tp] = message.offset
        (channel,) = channels
        groups.setdefault(id(channel), (channel, []))[1].append(message)
    delivered = await deliver_batch(consumer, singles, generation) if singles else 0
    wait_until_ebb = consumer.app.producer.buffer.wait_until_ebb
    for channel, messages in groups.values():
        await wait_until_ebb()
        await channel.queue.put(FetchedBatch(messages, generation))
        for message in messages:
            read_offsets[message.tp] = message.offset
        delivered += len(messages)
    return delivered


async def deliver(consumer: Any, batch: Sequence[tuple[Any, Any]], generation: int) -> int:
    """Deliver ``batch``: records of topics delivered whole through :func:`deliver_whole`, the
    others record by record (:func:`deliver_batch`). Returns the records delivered."""
    whole_topics: set[str] = getattr(consumer.app, "whole_fetch_topics", set())
    if not whole_topics:
        return await deliver_batch(consumer, batch, generation)
    whole = [(tp, m) for tp, m in batch if m.topic in whole_topics]
    if len(whole) == len(batch):
        return await deliver_whole(consumer, whole, generation)
    single = [(tp, m) for tp, m in batch if m.topic not in whole_topics]
    delivered = await deliver_batch(consumer, single, generation)
    return delivered + await deliver_whole(consumer, whole, generation)


@dataclass(frozen=True)
class FetchTuning:
    """How long the broker may hold a fetch to fill it: it answers once ``min_bytes`` are
    ready or ``max_wait_ms`` have passed. faust passes neither (``fetch_min_bytes`` stays 1), so
    at moderate load every fetch carries a handful of records and the consumer pays its
    per-fetch costs again and again for the same events."""

    min_bytes: int
    max_wait_ms: int


class TunedConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """faust's consumer thread, its aiokafka consumer given the app's :class:`FetchTuning`."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        tuning: FetchTuning | None = getattr(self.app, "fetch_tuning", None)
        if tuning is not None:  # read by AIOKafkaConsumer.start(), which has not run yet
            consumer._fetch_min_bytes = tuning.min_bytes
            consumer._fetch_max_wait_ms = tuning.max_wait_ms
        return consumer


class BatchDeliveryConsumer(faust_aiokafka.Consumer):
    """faust's aiokafka consumer with one delivery task per fetched batch (see module doc)."""

    def _new_consumer_thread(self) -> Any:
        return TunedConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - thread loop
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                records = self.getmany(timeout=1.0)
                await self.sleep(0)  # getmany may return at once, again and again
                if not self.should_stop:
                    # getmany checks the generation record by record while it yields; read it
                    # only now: getmany may have waited through a whole rebalance, and its
                    # records belong to the generation that followed (reading it before the
                    # call dropped them, and nothing fetched them again)
                    batch = [item async for item in records]
                    generation = self.app.consumer_generation_id
                    if batch:
                        await self.wait_first(
                            deliver(self, batch, generation), self.suspend_flow.wait()
                        )
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)


class BatchDeliveryTransport(faust_aiokafka.Transport):
    """faust's aiokafka transport with :class:`BatchDeliveryConsumer`."""

    Consumer = BatchDeliveryConsumer


class App(faust.App):
    """``faust.App`` whose Kafka consumer is :class:`BatchDeliveryConsumer` (other transports,
    such as the in-memory one of ``test_context``, are left alone).

    Its data directory defaults to ``<tmp>/nbo-faust-<app id>`` instead of faust's
    ``<app id>-data`` in the working directory: the worker keeps no local tables, and a
    checkout should not fill up with empty directories.
    """

    def __init__(self, id: str, **options: Any) -> None:
        options.setdefault("datadir", Path(tempfile.gettempdir()) / f"nbo-faust-{id}")
        super().__init__(id, **options)
        self.whole_fetch_topics: set[str] = set()
        self.fetch_tuning: FetchTuning | None = None

    def deliver_whole_fetches(self, topic: Any, max_batches: int) -> None:
        """Deliver ``topic``'s records to its agent as whole fetches (:mod:`agents.fetches`),
        at most ``max_batches`` of them waiting in the agent's queue (faust's default of
        ``stream_buffer_maxsize`` items would be that many fetches, not records; ``App.topic``
        drops a ``maxsize`` argument, so it is set here)."""
        topic.maxsize = max_batches
        self.whole_fetch_topics.add(topic.get_topic_name())

    def _new_transport(self) -> Any:
        url = self.conf.broker_consumer[0]
        if by_url(url) is faust_aiokafka.Transport:
            return BatchDeliveryTransport(self.conf.broker_consumer, self)
        return super()._new_transport()
