"""The Kafka topics as the input of ``nbo embed`` / ``nbo evaluate`` (``--from-topic``).

The events topic (``settings.topic_user_events``) and the item-catalog topic
(``settings.topic_item_catalog``) are read in full, as the catalogue feed of the workers reads
the catalogues (:mod:`agents.catalog_feed`): a plain consumer (``group_id=None``, so no
consumer group, no committed offsets and no group ACL) assigns itself every partition and
reads from the beginning, but only up to the end offsets taken at start, so the read ends even
while producers keep writing. Events are decoded with the core decoder; an undecodable record
is skipped and counted (as a line of ``--events`` is). The catalogue keeps the last record per
item (a null value deletes the item named by its key); items of the events that are not in it
get the tags of their first event (as ``--events`` without ``--catalog``). Nothing is read from
the offer-catalog topic: the items are ranked, as for ``--events`` without offers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from app.commands.learning_data import LearningData, event_data, read_catalog_file
from app.core.catalog_records import Item, Offer, decode_item
from app.core.errors import EventRejected
from app.core.events import UserEvent, decode_event
from app.settings import Settings

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
"""One day in milliseconds (``--since-days``)."""

FETCH_TIMEOUT_MS = 500
"""Longest wait of one fetch (ms); the read ends by offsets, not by idle time."""

RecordHandler = Callable[[str, bytes | None, bytes | None], None]
"""Called with (topic, key, value) for every record read."""


class TopicSourceError(RuntimeError):
    """A topic to read does not exist (or this identity may not describe it)."""


async def read_topics_to_end(
    kafka: dict[str, Any],
    topics: Sequence[str],
    on_record: RecordHandler,
    *,
    progress: bool = True,
    description: str = "reading topics",
    since_ms: Mapping[str, int] | None = None,
) -> int:
    """Read every partition of ``topics`` from the beginning up to the end offsets taken at
    start, calling ``on_record`` for each record in offset order per partition; returns the
    number of records read.

    ``since_ms``: per topic, start instead at the first record whose Kafka timestamp is at
    or after this time (epoch ms; the broker's time index, ``offsets_for_times``): a read of
    the last hours of a long topic then costs those hours only.

    ``kafka``: aiokafka client options (:func:`app.connections.kafka_client_kwargs`). The
    progress bar counts offsets (compacted topics have gaps, so it counts those too). Raises
    :class:`TopicSourceError` if a topic does not exist.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        group_id=None, enable_auto_commit=False, auto_offset_reset="earliest", **kafka
    )
    await consumer.start()
    read = 0
    try:
        partitions: list[Any] = []
        for topic in topics:
            found = consumer.partitions_for_topic(topic)
            if not found:  # the metadata of start-up may predate the topic: once more
                await consumer._client.force_metadata_update()
                found = consumer.partitions_for_topic(topic)
            if not found:
                raise TopicSourceError(f"topic {topic!r} does not exist (or may not be described)")
            partitions.extend(TopicPartition(topic, p) for p in sorted(found))
        begin = await consumer.beginning_offsets(partitions)
        end = await consumer.end_offsets(partitions)
        if since_ms:
            timed = {tp: since_ms[tp.topic] for tp in partitions if tp.topic in since_ms}
            found_at = await consumer.offsets_for_times(timed) if timed else {}
            for tp in timed:
                at = found_at.get(tp)
                begin[tp] = max(begin[tp], at.offset) if at is not None else end[tp]
        pending = [tp for tp in partitions if end[tp] > begin[tp]]
        done = {tp: begin[tp] for tp in pending}
        total = sum(end[tp] - begin[tp] for tp in pending)
        with tqdm(
            total=total, desc=description, unit="msg", disable=not progress, leave=False
        ) as bar:
            if not pending:
                return 0
            consumer.assign(pending)
            for tp in pending:
                consumer.seek(tp, begin[tp])
            remaining = set(pending)
            while remaining:
                batches = await consumer.getmany(timeout_ms=FETCH_TIMEOUT_MS, max_records=10_000)
                for tp, records in batches.items():
                    for record in records:
                        if record.offset >= end[tp]:
                            break  # written after the start: not part of this read
                        on_record(tp.topic, record.key, record.value)
                        read += 1
                for tp in list(remaining):
                    position = min(await consumer.position(tp), end[tp])
                    bar.update(position - done[tp])
                    done[tp] = position
                    if position >= end[tp]:
                        remaining.discard(tp)
                        consumer.pause(tp)
    finally:
        await consumer.stop()
    return read


@dataclass
class _Collected:
    """What the record handler gathered (module doc)."""

    events: list[UserEvent] = field(default_factory=list)
    items: dict[str, Item] = field(default_factory=dict)
    rejected_events: int = 0
    rejected_items: int = 0
    older: int = 0


@dataclass(frozen=True)
class TopicSource:
    """The events topic, and the item-catalog topic unless a catalogue file is given.

    ``since_days``: keep only events whose event time (``ts``) is at most this many days
    before ``now_ms`` (default: the time of :meth:`load`); ``None`` (default) keeps all.
    """

    kafka: dict[str, Any]
    events_topic: str
    items_topic: str
    since_days: float | None = None
    progress: bool = True
    now_ms: int | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, *, since_days: float | None = None, progress: bool = True
    ) -> TopicSource:
        """The configured topics (``topic_user_events``, ``topic_item_catalog``) on the
        configured broker, with the configured security (else the local stack's broker)."""
        from app.connections import kafka_client_kwargs

        return cls(
            kafka_client_kwargs(settings),
            settings.topic_user_events,
            settings.topic_item_catalog,
            since_days=since_days,
            progress=progress,
        )

    def load(self, catalog: Path | None = None) -> LearningData:
        """Read the topics (module doc) into learning data. With ``catalog`` (Item/Offer JSON
        lines) the catalogue comes from that file and the item-catalog topic is not read."""
        now = self.now_ms if self.now_ms is not None else int(time.time() * 1000)
        cutoff = now - int(self.since_days * DAY_MS) if self.since_days is not None else None
        got = _Collected()

        def on_record(topic: str, key: bytes | None, value: bytes | None) -> None:
            if topic == self.events_topic:
                try:
                    event = decode_event(value)
                except EventRejected:
                    got.rejected_events += 1
                    return
                if cutoff is not None and event.ts_ms < cutoff:
                    got.older += 1
                elif event.is_item_event and event.item_id is not None:
                    got.events.append(event)  # only item events are learned from
            elif value is None:
                if key:
                    got.items.pop(key.decode("utf-8", "replace"), None)
            else:
                try:
                    item = decode_item(value)
                except EventRejected:
                    got.rejected_items += 1
                    return
                got.items[item.item_id] = item

        topics = (
            [self.events_topic] if catalog is not None else [self.events_topic, self.items_topic]
        )
        read = asyncio.run(
            read_topics_to_end(
                self.kafka, topics, on_record, progress=self.progress, description="reading topics"
            )
        )
        items: list[Item]
        offers: list[Offer] = []
        if catalog is not None:
            items, offers = read_catalog_file(catalog)
        else:
            items = list(got.items.values())
        log.info(
            "read %d records of %s: %d item events kept, %d older than %s days, %d undecodable"
            " events; %d items, %d undecodable item records",
            read,
            ", ".join(topics),
            len(got.events),
            got.older,
            self.since_days,
            got.rejected_events,
            len(items),
            got.rejected_items,
        )
        return event_data(got.events, items, offers, got.rejected_events)
