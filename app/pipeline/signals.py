"""The batch-wide signals every ranking of a batch shares: offer popularity, offer feedback
statistics and the exploration part drawn from them.

* Popularity: each worker counts the item events of its own partitions (a sample of all
  users) and pushes the offers' popularity prior into the catalogue at most every
  ``popularity_refresh_ms``.
* Offer statistics: ``offer_*`` feedback events are written to the offer-stats store,
  idempotently per partition, and every partition's statistics are reread at most every
  ``offer_stats_refresh_ms``.
* Exploration: one Thompson draw per offer from the posterior of those statistics, seeded by
  the configured seed and the batch's position, so a redelivered batch draws the same again.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping

import numpy as np
import numpy.typing as npt

from app.core.catalog import Catalogue
from app.core.enums import OFFER_EVENT_TYPES
from app.core.events import UserEvent
from app.core.exploration import (
    OfferStats,
    Posterior,
    batch_rng,
    exploration_scores,
    partition_updates,
    posterior,
)
from app.core.popularity import PopularityFeed
from app.core.weights import event_weight
from app.pipeline.config import PipelineConfig
from app.pipeline.records import InboundRecord
from app.ports import OfferStatsStore

Exploration = npt.NDArray[np.float64]
"""The exploration part of every offer of the catalogue's snapshot, in its order."""


class BatchSignals:
    """Popularity, offer statistics and exploration for one worker (see module doc)."""

    def __init__(
        self,
        catalogue: Catalogue,
        config: PipelineConfig,
        offer_stats: OfferStatsStore | None = None,
        topic_ids: Mapping[str, str] | None = None,
    ) -> None:
        self._catalogue = catalogue
        self._cfg = config
        self._offer_stats = offer_stats
        self._topic_ids: Mapping[str, str] = topic_ids if topic_ids is not None else {}
        self._stats: dict[str, OfferStats] = {}
        self._stats_read_ms: int | None = None
        self._posterior: tuple[object, Posterior] | None = None
        self._popularity = PopularityFeed(catalogue, config.popularity_half_life_ms)
        self._popularity_refreshed_ms = 0

    def observe(self, event: UserEvent) -> None:
        """Count a newly applied item event in the popularity prior: only items of the
        catalogue, with the catalogue's tags (an event's own item id and tags are not trusted
        with every user's ranking); other events are ignored."""
        if event.item_id is None or not event.is_item_event:
            return
        if self._catalogue.item(event.item_id) is None:
            return
        tags = self._catalogue.item_tags(event.item_id)
        weight = event_weight(event, self._cfg.weights)
        self._popularity.observe(event.item_id, tags, weight, event.ts_ms)

    def refresh_popularity(self, now: int) -> None:
        """Push the offers' popularity prior into the catalogue, at most every refresh period."""
        if now - self._popularity_refreshed_ms < self._cfg.popularity_refresh_ms:
            return
        self._popularity_refreshed_ms = now
        self._popularity.push()

    async def record_feedback(self, events: Iterable[tuple[InboundRecord, UserEvent]]) -> None:
        """Write the batch's offer feedback to the offer stats, idempotently per partition
        (before the users' writes: a redelivered batch is then recognised by its offsets)."""
        if self._offer_stats is None:
            return
        by_topic: dict[str, dict[str, tuple[int, int, UserEvent]]] = {}
        for record, event in events:
            if event.type in OFFER_EVENT_TYPES:  # one per event id within the batch
                rows = by_topic.setdefault(record.topic, {})
                rows.setdefault(event.event_id, (record.partition, record.offset, event))
        half_life = self._cfg.exploration.half_life_ms
        for topic, rows in by_topic.items():
            topic_id = self._topic_ids.get(topic, "")
            updates = partition_updates(topic, rows.values(), half_life, topic_id=topic_id)
            outcome = await self._offer_stats.apply(updates)
            overlaps = outcome.overlaps_of(topic)
            if overlaps:  # part of a partition's records were written before: the rest
                redo = partition_updates(
                    topic, rows.values(), half_life, after=overlaps, topic_id=topic_id
                )
                await self._offer_stats.apply([u for u in redo if u.partition in overlaps])

    async def refresh_offer_stats(self, now: int) -> None:
        """Reread every partition's offer stats, at most every refresh period."""
        store, cfg = self._offer_stats, self._cfg
        if store is None or cfg.exploration.weight == 0:
            return
        last = self._stats_read_ms
        if last is not None and now - last < cfg.offer_stats_refresh_ms:
            return
        self._stats = await store.read_all(cfg.events_topic, range(cfg.events_partitions))
        self._stats_read_ms = now
        self._posterior = None

    def draw_exploration(self, now: int, key: str) -> Exploration | None:
        """The exploration part per offer (one Thompson draw per offer), or None when off.

        The draws are seeded by the configured seed and ``key`` (e.g. the batch's first record
        position), so with a seed a redelivered batch draws the same again."""
        cfg = self._cfg.exploration
        if cfg.weight == 0:
            return None
        snap = self._catalogue.snapshot()
        # a popularity refresh replaces the snapshot but keeps its offer_ids tuple
        if self._posterior is None or self._posterior[0] is not snap.offer_ids:
            post = posterior(snap.offer_ids, self._stats, now, cfg, index=snap.offer_index)
            self._posterior = (snap.offer_ids, post)
        rng = batch_rng(cfg.seed, zlib.crc32(key.encode()))
        return exploration_scores(self._posterior[1], rng, cfg.weight)
