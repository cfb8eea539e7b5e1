"""Time-decayed popularity of items, tags and offers: the prior of cold users' rankings.

Each positive interaction adds its weight to the item and to each of the item's tags, decayed
by event time with a half-life (default 1 day), so popularity follows trends and a replay yields
the same values. An offer's popularity is the largest of its items' (or, for an offer of tags
only, the largest of its tags'), divided by the most popular item's or tag's: a number in [0, 1].

Counts are kept as ``w * 2^((t - t0)/h)`` against a moving origin ``t0`` (rescaled before the
exponent grows large), so a decay costs nothing per event and only ratios are ever read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from app.core.catalog import Catalogue

F64 = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int32]
"""Offer rows and columns: 32 bits (half the memory of ``intp`` at 100,000 offers' entries)."""
DAY_MS = 86_400_000
_RESCALE_AFTER = 256.0  # half-lives past the origin before the counts are rescaled


@dataclass(frozen=True, eq=False)
class OfferSources:
    """Where each offer's popularity comes from, as flat index arrays: built once per catalogue
    (O(entries) Python), then every refresh is a few numpy operations.

    ``items`` / ``tags``: the distinct item ids / tags named by the offers. Entry ``e`` of
    ``item_rows`` / ``item_cols`` says that offer row ``item_rows[e]`` names item
    ``items[item_cols[e]]``; the same for tags. ``has_items``: per offer row, whether it names
    an item (its tags then count only while no item has been seen).
    """

    size: int
    items: tuple[str, ...]
    item_rows: Ints
    item_cols: Ints
    tags: tuple[str, ...]
    tag_rows: Ints
    tag_cols: Ints
    has_items: npt.NDArray[np.bool_]

    @classmethod
    def of(cls, offers: Sequence[tuple[tuple[str, ...], tuple[str, ...]]]) -> OfferSources:
        """From ``(item_ids, tags)`` per offer row.

        Built straight into flat arrays: a list of ``(row, column)`` pairs cost ~40 MB at its
        peak for 100,000 offers, more than the worker's memory budget had left."""
        return cls.of_columns([item_ids for item_ids, _ in offers], [tags for _, tags in offers])

    @classmethod
    def of_columns(
        cls, item_ids: Sequence[tuple[str, ...]], tags: Sequence[tuple[str, ...]]
    ) -> OfferSources:
        """The same from the item ids and the tags of each offer row (equal lengths)."""
        if len(item_ids) != len(tags):
            raise ValueError(f"{len(item_ids)} rows of item ids, {len(tags)} of tags")
        items, item_rows, item_cols = _entries(item_ids)
        tag_names, tag_rows, tag_cols = _entries(tags)
        has_items = np.zeros(len(item_ids), dtype=np.bool_)
        has_items[item_rows] = True
        return cls(len(item_ids), items, item_rows, item_cols,
                   tag_names, tag_rows, tag_cols, has_items)  # fmt: skip


def _entries(named: Sequence[tuple[str, ...]]) -> tuple[tuple[str, ...], Ints, Ints]:
    """The distinct names of ``named`` (one tuple per row) in order of first appearance, and
    per entry its row and the column of its name."""
    per_row = np.fromiter(map(len, named), np.intp, count=len(named))
    total = int(per_row.sum())
    rows = np.repeat(np.arange(len(named), dtype=np.int32), per_row)
    position: dict[str, int] = {}
    cols = np.fromiter(
        (position.setdefault(name, len(position)) for row in named for name in row),
        np.int32,
        count=total,
    )
    return tuple(position), rows, cols


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

    def offer_popularity_array(self, sources: OfferSources) -> F64:
        """:meth:`offer_popularity` of every offer row of ``sources``, vectorised: an offer
        that names items takes its most popular item's count over the top item's; one without
        items (or any offer, while no item has been seen) its most popular tag's over the top
        tag's; 0 otherwise."""
        out = np.zeros(sources.size, dtype=np.float64)
        top_item = max(self.items.values(), default=0.0)
        top_tag = max(self.tags.values(), default=0.0)
        if top_item > 0 and sources.item_rows.size:
            counts = np.fromiter(
                (self.items.get(i, 0.0) for i in sources.items), np.float64, len(sources.items)
            )
            np.maximum.at(out, sources.item_rows, counts[sources.item_cols] / top_item)
        if top_tag > 0 and sources.tag_rows.size:
            counts = np.fromiter(
                (self.tags.get(t, 0.0) for t in sources.tags), np.float64, len(sources.tags)
            )
            use = ~sources.has_items[sources.tag_rows] if top_item > 0 else slice(None)
            np.maximum.at(out, sources.tag_rows[use], counts[sources.tag_cols[use]] / top_tag)
        return out

    def offer_popularity(
        self, offers: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]
    ) -> dict[str, float]:
        """Popularity in [0, 1] of each offer, given ``offer_id -> (item_ids, tags)`` (the
        rule of :meth:`offer_popularity_array`)."""
        popularity = self.offer_popularity_array(OfferSources.of(list(offers.values())))
        return dict(zip(offers, popularity.tolist(), strict=True))


class PopularityFeed:
    """The popularity prior of ``catalogue``'s offers: item events are observed, and
    :meth:`push` sets every offer's popularity in the catalogue (the worker at most every few
    seconds, the offline evaluation before each batch of queries)."""

    def __init__(self, catalogue: Catalogue, half_life_ms: float) -> None:
        self._catalogue = catalogue
        self._tracker = PopularityTracker(half_life_ms=float(half_life_ms))
        self._sources: tuple[tuple[str, ...], OfferSources] | None = None

    def observe(self, item_id: str, tags: Iterable[str], weight: float, ts_ms: int) -> None:
        """Count one item event (see :meth:`PopularityTracker.observe`)."""
        self._tracker.observe(item_id, tags, weight, ts_ms)

    def push(self) -> None:
        """Set the popularity of every offer of the catalogue from what was observed."""
        snap = self._catalogue.snapshot()
        sources = self._sources
        if sources is None or sources[0] is not snap.offer_ids:  # the catalogue changed
            item_ids = [o.item_ids for o in snap.offers]
            sources = self._sources = (
                snap.offer_ids,
                OfferSources.of_columns(item_ids, snap.offer_tags),
            )
        popularity = self._tracker.offer_popularity_array(sources[1])
        self._catalogue.set_popularities(snap.offer_ids, popularity)
