"""Time-decayed popularity of items, tags and offers: the prior of cold users' rankings.

Each positive interaction adds its weight to the item and to each of the item's tags, decayed
by event time with a half-life (default 1 day), so popularity follows trends and a replay yields
the same values. An offer's popularity is the largest of its items' (or, for an offer of tags
only, the largest of its tags'), divided by the most popular item's or tag's: a number in [0, 1].

Counts are kept as ``w * 2^((t - t0)/h)`` against a moving origin ``t0`` (rescaled before the
exponent grows large), so a decay costs nothing per event and only ratios are ever read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

DAY_MS = 86_400_000
_RESCALE_AFTER = 256.0  # half-lives past the origin before the counts are rescaled


@dataclass
class PopularityTracker:
    """Decayed interaction weight per item and per tag (see module doc)."""

    half_life_ms: float = float(DAY_MS)
    items: dict[str, float] = field(default_factory=dict)
    tags: dict[str, float] = field(default_factory=dict)
    origin_ms: float | None = None

    def observe(self, item_id: str, tags: Iterable[str], weight: float, ts_ms: int) -> None:
        """Add one interaction of ``weight`` (> 0 counts; others are ignored) at ``ts_ms``."""
        if weight <= 0:
            return
        if self.origin_ms is None:
            self.origin_ms = float(ts_ms)
        exponent = (ts_ms - self.origin_ms) / self.half_life_ms
        if exponent > _RESCALE_AFTER:
            self._rescale(float(ts_ms))
            exponent = 0.0
        amount = weight * 2.0**exponent
        self.items[item_id] = self.items.get(item_id, 0.0) + amount
        for tag in tags:
            self.tags[tag] = self.tags.get(tag, 0.0) + amount

    def _rescale(self, new_origin_ms: float) -> None:
        assert self.origin_ms is not None
        factor = 2.0 ** (-(new_origin_ms - self.origin_ms) / self.half_life_ms)
        self.items = {k: v * factor for k, v in self.items.items() if v * factor > 1e-300}
        self.tags = {k: v * factor for k, v in self.tags.items() if v * factor > 1e-300}
        self.origin_ms = new_origin_ms

    def offer_popularity(
        self, offers: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]
    ) -> dict[str, float]:
        """Popularity in [0, 1] of each offer, given ``offer_id -> (item_ids, tags)``."""
        top_item = max(self.items.values(), default=0.0)
        top_tag = max(self.tags.values(), default=0.0)
        result: dict[str, float] = {}
        for offer_id, (item_ids, tags) in offers.items():
            if item_ids and top_item > 0:
                result[offer_id] = max(self.items.get(i, 0.0) for i in item_ids) / top_item
            elif tags and top_tag > 0:
                result[offer_id] = max(self.tags.get(t, 0.0) for t in tags) / top_tag
            else:
                result[offer_id] = 0.0
        return result
