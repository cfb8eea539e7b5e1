"""Reads both catalogue topics, and the item-neighbours topic, in full into this worker's
:class:`Catalogue` and :class:`NeighbourTable`.

Every worker needs the whole catalogue, so these compacted topics are not read through the
consumer group (which would split them): a plain consumer assigns itself every partition,
reads from the beginning, and keeps following. ``ready`` is set once it has caught up with the
end offsets seen at start, so the first ranking sees the whole catalogue and every neighbour.
A record with a null value deletes the item, offer or item's neighbours named by its key; a
record that fails to decode (or a neighbours record whose key is not its ``item_id``) is
counted and logged, and the feed moves on. The neighbours topic is optional: when it does not
exist at start the worker runs without co-occurrence (logged) until it is restarted.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from agents.metrics import WorkerMetrics
from app.core.catalog import Catalogue
from app.core.catalog_records import decode_item, decode_offer
from app.core.cooccurrence.table import NeighbourTable, decode_neighbours
from app.core.errors import EventRejected, RejectReason

log = logging.getLogger(__name__)


class CatalogueFeed:
    """Follows ``item_topic`` and ``offer_topic`` into ``catalogue``, and ``neighbours_topic``
    (if given and it exists) into ``neighbours`` (see module doc)."""

    def __init__(
        self,
        consumer_kwargs: dict[str, Any],
        item_topic: str,
        offer_topic: str,
        catalogue: Catalogue,
        metrics: WorkerMetrics,
        *,
        neighbours_topic: str | None = None,
        neighbours: NeighbourTable | None = None,
    ) -> None:
        self._kwargs = consumer_kwargs
        self._item_topic = item_topic
        self._offer_topic = offer_topic
        self._catalogue = catalogue
        self._metrics = metrics
        self._neighbours_topic = neighbours_topic if neighbours is not None else None
        self._neighbours = neighbours
        self.ready = asyncio.Event()

    async def run(self) -> None:
        """Follow the topics until cancelled."""
        consumer = AIOKafkaConsumer(
            group_id=None, enable_auto_commit=False, auto_offset_reset="earliest", **self._kwargs
        )
        await consumer.start()
        try:
            partitions = await self._partitions(consumer)
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            end = await consumer.end_offsets(partitions)
            targets = {tp: offset for tp, offset in end.items() if offset > 0}
            if not targets:
                self.ready.set()
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
                for tp, messages in batches.items():
                    for message in messages:
                        self._apply(tp.topic, message.key, message.value)
                if batches:
                    self._metrics.catalogue_items.set(self._catalogue.n_items)
                    self._metrics.catalogue_offers.set(self._catalogue.n_offers)
                    if self._neighbours is not None:
                        self._metrics.neighbour_items.set(len(self._neighbours))
                if not self.ready.is_set():
                    positions = {tp: await consumer.position(tp) for tp in targets}
                    if all(positions[tp] >= offset for tp, offset in targets.items()):
                        log.info(
                            "catalogue loaded: %d items, %d offers, %d items with neighbours",
                            self._catalogue.n_items,
                            self._catalogue.n_offers,
                            len(self._neighbours) if self._neighbours is not None else 0,
                        )
                        self.ready.set()
        finally:
            await consumer.stop()

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        result: list[TopicPartition] = []
        for topic in (self._item_topic, self._offer_topic):
            for attempt in range(600):
                found = consumer.partitions_for_topic(topic)
                if found:
                    result.extend(TopicPartition(topic, p) for p in sorted(found))
                    break
                if attempt % 20 == 0:
                    log.info("waiting for topic %s to exist", topic)
                await consumer._client.force_metadata_update()
                await asyncio.sleep(0.5)
            else:
                raise RuntimeError(f"catalogue topic {topic!r} does not exist")
        optional = self._neighbours_topic
        if optional is not None:
            found = consumer.partitions_for_topic(optional)
            if not found:  # the metadata of the last refresh may predate it: once more
                await consumer._client.force_metadata_update()
                found = consumer.partitions_for_topic(optional)
            if found:
                result.extend(TopicPartition(optional, p) for p in sorted(found))
            else:
                log.warning(
                    "topic %s does not exist: no co-occurrence until a restart after it is created",
                    optional,
                )
        return result

    def _apply(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        catalogue = self._catalogue
        try:
            if topic == self._neighbours_topic and self._neighbours is not None:
                self._apply_neighbours(self._neighbours, key, value)
            elif topic == self._item_topic:
                if value is None:
                    if key:
                        catalogue.delete_item(key.decode())
                else:
                    catalogue.upsert_item(decode_item(value))
            elif value is None:
                if key:
                    catalogue.delete_offer(key.decode())
            else:
                catalogue.upsert_offer(decode_offer(value))
        except (EventRejected, UnicodeDecodeError) as exc:
            self._metrics.catalogue_rejected.inc()
            log.warning("skipping a bad record on %s (key %r): %s", topic, key, exc)

    @staticmethod
    def _apply_neighbours(table: NeighbourTable, key: bytes | None, value: bytes | None) -> None:
        """One item-neighbours record: replace (or, null value, delete) the key's neighbours."""
        if value is None:
            if key:
                table.delete(key.decode())
            return
        record = decode_neighbours(value)
        if key is not None and key.decode() != record.item_id:
            raise EventRejected(
                RejectReason.SCHEMA_VIOLATION,
                f"key {key.decode()!r} is not the record's item_id {record.item_id!r}",
            )
        table.upsert(record.item_id, record.neighbours)
