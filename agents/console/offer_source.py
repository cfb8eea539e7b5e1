"""The Offers page's data: the offer statistics the workers keep in Redis, summed over every
partition of the events topic (the workers' own reader, :class:`RedisOfferStatsStore`), and
the offer titles of the catalogue topic (read from its beginning, as the workers' catalogue
feed does, at most every ``TITLES_S`` seconds; at most ``MAX_TITLES`` offers).

Each answer is kept ``CACHE_S`` seconds; a store or broker that does not answer gives what
could be read and names the error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from app.console.feeds import OfferData
from app.core.catalog_records import decode_offer
from app.core.errors import EventRejected
from app.core.exploration import OfferStats
from app.ports import StoreUnavailable
from app.storage.offer_stats import RedisOfferStatsStore

log = logging.getLogger(__name__)

CACHE_S = 5.0
TITLES_S = 60.0
MAX_TITLES = 10_000
TIMEOUT_S = 10.0


@dataclass
class RedisOfferSource:
    """See module doc."""

    store: RedisOfferStatsStore
    events_topic: str
    partitions: int
    catalogue_topic: str
    client_kwargs: dict[str, Any]
    clock: Callable[[], float] = time.monotonic
    _cached: tuple[float, OfferData] | None = field(default=None, repr=False)
    _titles: tuple[float, dict[str, str]] | None = field(default=None, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    async def offer_data(self) -> OfferData:
        async with self._lock:
            now = self.clock()
            if self._cached is not None and now - self._cached[0] < CACHE_S:
                return self._cached[1]
            errors: list[str] = []
            stats: dict[str, OfferStats] = {}
            try:
                stats = await self.offer_stats()
            except (StoreUnavailable, TimeoutError, OSError) as exc:
                log.warning("console: cannot read the offer stats: %r", exc)
                errors.append(f"offer statistics unavailable ({type(exc).__name__})")
            titles = await self._current_titles(now, errors)
            data = OfferData(stats, titles, self.partitions, "; ".join(errors) or None)
            self._cached = (now, data)
            return data

    async def offer_stats(self) -> dict[str, OfferStats]:
        """The statistics summed over the partitions, read now (``StoreUnavailable`` or
        ``TimeoutError`` when Redis does not answer)."""
        return await asyncio.wait_for(
            self.store.read_all(self.events_topic, range(self.partitions)), TIMEOUT_S
        )

    async def _current_titles(self, now: float, errors: list[str]) -> dict[str, str]:
        if self._titles is not None and now - self._titles[0] < TITLES_S:
            return self._titles[1]
        try:
            titles = await asyncio.wait_for(self._read_titles(), TIMEOUT_S)
        except (TimeoutError, KafkaError, OSError) as exc:
            log.warning("console: cannot read the offer catalogue: %r", exc)
            errors.append(f"offer catalogue unavailable ({type(exc).__name__})")
            return self._titles[1] if self._titles is not None else {}
        self._titles = (now, titles)
        return titles

    async def _read_titles(self) -> dict[str, str]:
        consumer = AIOKafkaConsumer(
            group_id=None, enable_auto_commit=False, request_timeout_ms=5_000, **self.client_kwargs
        )
        titles: dict[str, str] = {}
        try:
            await consumer.start()
            found = consumer.partitions_for_topic(self.catalogue_topic)
            if not found:
                await consumer._client.force_metadata_update()
                found = consumer.partitions_for_topic(self.catalogue_topic)
            partitions = [TopicPartition(self.catalogue_topic, p) for p in sorted(found or ())]
            if not partitions:
                return titles
            ends = await consumer.end_offsets(partitions)
            wanted = {tp: int(o) for tp, o in ends.items() if int(o) > 0}
            consumer.assign(list(wanted))
            await consumer.seek_to_beginning(*wanted)
            while wanted:
                batches = await consumer.getmany(timeout_ms=1_000, max_records=5_000)
                if not batches:
                    break
                for tp, records in batches.items():
                    for r in records:
                        self._apply(titles, r.key, r.value)
                        if r.offset + 1 >= wanted.get(tp, 0):
                            wanted.pop(tp, None)
            return titles
        finally:
            await consumer.stop()

    @staticmethod
    def _apply(titles: dict[str, str], key: bytes | None, value: bytes | None) -> None:
        try:
            if value is None:
                if key:
                    titles.pop(key.decode(), None)
                return
            offer = decode_offer(value)
        except (EventRejected, UnicodeDecodeError):
            return  # the workers skip it too
        if offer.offer_id in titles or len(titles) < MAX_TITLES:
            titles[offer.offer_id] = offer.title
