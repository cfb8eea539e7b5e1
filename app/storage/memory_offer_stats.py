"""In-memory twin of :class:`app.storage.offer_stats.RedisOfferStatsStore` for fast tests.

Same semantics: per (topic, partition), the stored offset and the stats of each offer; an
update is written only if the stored offset is below its first offset (duplicate: last
offset <= stored; overlap: first <= stored < last), merged with
:func:`app.core.exploration.merge`. No TTL. ``available = False`` makes every call raise
:class:`~app.ports.StoreUnavailable`.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.core.exploration import (
    DEFAULT_HALF_LIFE_MS,
    OfferStats,
    OfferStatsUpdate,
    StatsApplyOutcome,
    check_distinct,
    merge_all,
)
from app.ports import StoreUnavailable


class MemoryOfferStatsStore:
    """Offer feedback stats in a dict; counts round trips like the Redis store would make."""

    def __init__(self, half_life_ms: int = DEFAULT_HALF_LIFE_MS) -> None:
        """``half_life_ms``: decay half-life, event-time ms (default 7 days)."""
        self._half_life_ms = half_life_ms
        # (topic, partition) -> (stored offset, its topic id, stats per offer)
        self._partitions: dict[tuple[str, int], tuple[int, str, dict[str, OfferStats]]] = {}
        self.available = True
        self.round_trips = 0

    def _check(self) -> None:
        if not self.available:
            raise StoreUnavailable("memory offer stats store marked unavailable")
        self.round_trips += 1

    async def apply(self, updates: Sequence[OfferStatsUpdate]) -> StatsApplyOutcome:
        """Write each update unless its partition already holds its records."""
        check_distinct(updates)
        if not updates:
            return StatsApplyOutcome()
        self._check()
        applied: set[tuple[str, int]] = set()
        duplicates: set[tuple[str, int]] = set()
        overlaps: dict[tuple[str, int], int] = {}
        for update in updates:
            stored, topic_id, stats = self._partitions.get(update.source, (-1, "", {}))
            if update.topic_id and topic_id and update.topic_id != topic_id:
                stored = -1  # the topic was recreated: its offsets start again
            if update.last_offset <= stored:
                duplicates.add(update.source)
            elif update.first_offset <= stored:
                overlaps[update.source] = stored
            else:
                merged = merge_all([stats, update.stats], self._half_life_ms)
                kept_id = update.topic_id or topic_id
                self._partitions[update.source] = (update.last_offset, kept_id, merged)
                applied.add(update.source)
        return StatsApplyOutcome(frozenset(applied), frozenset(duplicates), overlaps)

    async def read_all(self, topic: str, partitions: Sequence[int]) -> dict[str, OfferStats]:
        """Per offer, its stats summed over ``partitions`` of ``topic``."""
        if not partitions:
            return {}
        self._check()
        parts = [self._partitions.get((topic, p), (-1, "", {}))[2] for p in partitions]
        return merge_all(parts, self._half_life_ms)
