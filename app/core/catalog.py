"""The in-memory catalogue of items and offers, and its immutable array snapshot for scoring.

The catalogue mirrors two compacted topics: upsert by id, delete by id (tombstone). Offer
arrays are rebuilt lazily: an upsert or delete only marks the catalogue dirty and the next
:meth:`Catalogue.snapshot` rebuilds once, so a burst of catalogue messages costs one rebuild.
A rebuild derives afresh only the rows of offers that changed (or whose items changed) and
gathers every other row from the previous arrays with one numpy take per column, so one offer
changed among 100,000 costs a gather, not 100,000 vector resolutions (which stalled a worker's
event loop for seconds).

An offer's vector (one matrix row) is its explicit vector, else the mean of its known items'
vectors, else the hash of its tags, else a zero row (affinity 0); rows are L2-normalised.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from sys import intern
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from app.core.catalog_records import Item, Offer, OfferRecord
from app.core.enums import Channel
from app.core.errors import EventRejected, RejectReason
from app.core.events import UserEvent
from app.core.sorted_ids import SortedIds
from app.core.vectors import (
    DEFAULT_DIM,
    Vector,
    check_dim,
    hash_tags,
    normalise_tag,
    resolve_vector,
    tag_vector,
    unit,
)

NO_START = np.iinfo(np.int64).min
"""``valid_from`` sentinel of an offer without a start (always started)."""
NO_END = np.iinfo(np.int64).max
"""``valid_until`` sentinel of an offer without an end (never expires)."""
CHANNELS: tuple[Channel, ...] = tuple(Channel)
"""Column order of :attr:`CatalogueSnapshot.channel_mask`."""

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Indices = npt.NDArray[np.intp]


@dataclass(frozen=True, eq=False)
class CatalogueSnapshot:
    """Immutable arrays of all offers (row ``i`` = ``offer_ids[i]``), for one scoring pass.

    ``matrix`` (N x D float32): unit offer vectors or zero rows. ``value_norm``: value /
    max value (0 if all 0). ``priority_norm``: priority / max |priority| in [-1, 1] (0 if all
    0). ``popularity``: prior per offer (expected in [0, 1], default 0). ``valid_from`` /
    ``valid_until``: epoch ms, window ``[from, until)``, with :data:`NO_START`/:data:`NO_END`
    sentinels. ``channel_mask`` (N x len(Channel)): allowed channels. ``offer_tags``:
    normalised tags of the offer and its known items. ``tag_names``/``tag_matrix`` (T x D):
    every known tag of the catalogue and its hash vector, for reasons. ``offer_index`` and
    ``tag_index`` map ids/tags to rows.
    """

    dim: int
    offer_ids: tuple[str, ...]
    offer_index: Mapping[str, int]
    offers: tuple[OfferRecord, ...]
    matrix: npt.NDArray[np.float32]
    value_norm: F64
    priority_norm: F64
    popularity: F64
    valid_from: I64
    valid_until: I64
    channel_mask: Bools
    item_offers: Mapping[str, Indices]
    offer_tags: tuple[tuple[str, ...], ...]
    tag_names: tuple[str, ...]
    tag_index: Mapping[str, int]
    tag_matrix: npt.NDArray[np.float32]
    repeatable: frozenset[str] = frozenset()
    """Item ids that are bought again and again: the items marked ``repeatable`` and every
    item of an offer marked ``repeatable`` (:mod:`app.core.restock`)."""
    restock_prior_ms: Mapping[str, int] = field(default_factory=dict)
    """Item id -> its typical repurchase interval (ms) from the catalogue's ``restock_days``,
    for the items that have one."""

    @property
    def size(self) -> int:
        """Number of offers N."""
        return len(self.offer_ids)

    def eligible_at(self, now_ms: int) -> Bools:
        """Offers inside their validity window at ``now_ms`` with at least one channel."""
        return (
            (self.valid_from <= now_ms)
            & (now_ms < self.valid_until)
            & self.channel_mask.any(axis=1)
        )

    def offers_with_items(self, item_ids: Iterable[str]) -> Indices:
        """Row indices of the offers that contain any of ``item_ids``."""
        rows = [self.item_offers[i] for i in item_ids if i in self.item_offers]
        if not rows:
            return np.empty(0, dtype=np.intp)
        return np.unique(np.concatenate(rows))


_A = TypeVar("_A", bound="np.ndarray[Any, Any]")


def _readonly(arr: _A) -> _A:
    arr.flags.writeable = False
    return arr


class Catalogue:
    """Items and offers by id, with lazily rebuilt offer arrays (see module docstring).

    ``dim`` is the vector dimension D (default 64). Not thread-safe; one per worker.
    """

    def __init__(self, dim: int = DEFAULT_DIM) -> None:
        self._dim = check_dim(dim)
        self._items: dict[str, Item] = {}
        self._item_vecs: dict[str, Vector | None] = {}
        self._item_tags: dict[str, tuple[str, ...]] = {}
        self._offers: dict[str, OfferRecord] = {}
        self._tag_lists: dict[tuple[str, ...], tuple[str, ...]] = {}  # shared by the records
        self._popularity: dict[str, float] = {}
        self._popularity_bulk: tuple[tuple[str, ...], F64] | None = None
        self._tag_vecs: dict[str, Vector | None] = {}
        self._snapshot: CatalogueSnapshot | None = None
        self._raw: _RawColumns | None = None
        """Unnormalised value and priority of the snapshot's rows (for the next gather)."""
        self._stale: set[str] = set()
        """Offers whose rows the next rebuild derives afresh (changed, or an item of theirs)."""
        self._dirty = True
        self._popularity_dirty = False
        self.rebuilds = 0
        """How many times the offer arrays were rebuilt (for metrics and tests)."""

    # --- mutation ---------------------------------------------------------------------------
    def _check_vector(self, vector: tuple[float, ...] | None, what: str) -> None:
        if vector is not None and len(vector) != self._dim:
            raise EventRejected(
                RejectReason.SCHEMA_VIOLATION,
                f"{what}.vector: expected {self._dim} floats, got {len(vector)}",
            )

    def upsert_item(self, item: Item) -> None:
        """Insert or replace an item; raises ``EventRejected`` if its vector is not D long."""
        self._check_vector(item.vector, "item")
        self._items[item.item_id] = item
        self._item_vecs[item.item_id] = resolve_vector(item.vector, item.tags, self._dim)
        self._item_tags[item.item_id] = _norm_tags(item.tags)
        self._stale.update(self._offers_naming(item.item_id))
        self._dirty = True

    def delete_item(self, item_id: str) -> bool:
        """Remove an item (tombstone); returns whether it existed."""
        existed = self._items.pop(item_id, None) is not None
        self._item_vecs.pop(item_id, None)
        self._item_tags.pop(item_id, None)
        if existed:
            self._stale.update(self._offers_naming(item_id))
        self._dirty = self._dirty or existed
        return existed

    def upsert_offer(self, offer: Offer) -> None:
        """Insert or replace an offer; raises ``EventRejected`` if its vector is not D long."""
        self._check_vector(offer.vector, "offer")
        self._offers[offer.offer_id] = OfferRecord.of(offer, self._tag_lists)
        self._stale.add(offer.offer_id)
        self._dirty = True

    def delete_offer(self, offer_id: str) -> bool:
        """Remove an offer (tombstone); returns whether it existed. Its popularity is kept."""
        existed = self._offers.pop(offer_id, None) is not None
        self._stale.discard(offer_id)
        self._dirty = self._dirty or existed
        return existed

    def _offers_naming(self, item_id: str) -> list[str]:
        """The offers of the latest snapshot that name ``item_id``, to derive afresh when the
        item changes. An offer changed since that snapshot is derived afresh anyway, and
        before the first snapshot every row is. (The snapshot's item -> rows map serves;
        a dictionary of sets of its own took ~5 MB at 100,000 offers.)"""
        snap = self._snapshot
        if snap is None:
            return []
        rows = snap.item_offers.get(item_id)
        return [] if rows is None else [snap.offer_ids[row] for row in rows.tolist()]

    def set_popularity(self, offer_id: str, popularity: float) -> None:
        """Set the popularity prior of an offer (finite, expected in [0, 1]; default 0).

        May be set before the offer arrives. Only the popularity array is refreshed.
        """
        if not np.isfinite(popularity):
            raise ValueError("popularity must be finite")
        bulk = self._popularity_bulk
        if bulk is not None:  # this value overrides the bulk's for this offer only
            self._popularity.update(zip(bulk[0], bulk[1].tolist(), strict=True))
            self._popularity_bulk = None
        self._popularity[offer_id] = float(popularity)
        self._popularity_dirty = True

    def set_popularities(self, offer_ids: tuple[str, ...], popularity: F64) -> None:
        """Set the popularity of many offers at once: ``popularity[i]`` for ``offer_ids[i]``
        (finite, expected in [0, 1]).

        Pass a snapshot's ``offer_ids`` (the same tuple object): the next snapshot then takes
        the array as it is, with no per-offer work (the periodic refresh of 100k offers).
        """
        values = np.array(popularity, dtype=np.float64)
        if values.shape != (len(offer_ids),):
            raise ValueError(f"need {len(offer_ids)} values, got shape {values.shape}")
        if not np.all(np.isfinite(values)):
            raise ValueError("popularity must be finite")
        old = self._popularity_bulk
        if old is not None and old[0] is not offer_ids:  # offers the new values do not name
            named = set(offer_ids)  # (those that left the catalogue) keep their popularity
            self._popularity.update(
                (o, v) for o, v in zip(old[0], old[1].tolist(), strict=True) if o not in named
            )
        # the bulk's values win over the one-by-one ones for the offers it names: they are
        # newer. Not copied into the dictionary: 100,000 offers cost ~6 MB there.
        self._popularity_bulk = (offer_ids, _readonly(values))
        self._popularity_dirty = True

    # --- lookups ----------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Vector dimension D."""
        return self._dim

    @property
    def n_items(self) -> int:
        """Number of items."""
        return len(self._items)

    @property
    def n_offers(self) -> int:
        """Number of offers."""
        return len(self._offers)

    def item(self, item_id: str) -> Item | None:
        """The item, or ``None``."""
        return self._items.get(item_id)

    def offer(self, offer_id: str) -> OfferRecord | None:
        """The offer, or ``None``."""
        return self._offers.get(offer_id)

    def item_vector(self, item_id: str) -> Vector | None:
        """The unit vector of a known item; ``None`` if unknown or it has no vector."""
        return self._item_vecs.get(item_id)

    def item_tags(self, item_id: str) -> tuple[str, ...]:
        """The normalised tags of a known item (empty if unknown)."""
        return self._item_tags.get(item_id, ())

    def offer_vector(self, offer_id: str) -> Vector | None:
        """The unit vector of a known offer (its matrix row); ``None`` if unknown or zero."""
        snap = self.snapshot()
        row = snap.offer_index.get(offer_id)
        if row is None:
            return None
        vec = snap.matrix[row]
        return vec.copy() if bool(vec.any()) else None

    def event_vector(self, event: UserEvent) -> Vector | None:
        """The vector an event applies to a profile.

        Item events: the known item's vector; offer events: the known offer's vector;
        otherwise (unknown, or known without a vector) the hash of ``event.tags``.
        """
        vec: Vector | None = None
        if event.is_item_event and event.item_id is not None:
            vec = self.item_vector(event.item_id)
        elif event.is_offer_event and event.offer_id is not None:
            vec = self.offer_vector(event.offer_id)
        return vec if vec is not None else hash_tags(event.tags, self._dim)

    def tag_vector(self, tag: str) -> Vector | None:
        """The hash vector of a normalised tag (memoised per catalogue)."""
        if tag not in self._tag_vecs:
            self._tag_vecs[tag] = tag_vector(tag, self._dim)
        return self._tag_vecs[tag]

    # --- snapshot ---------------------------------------------------------------------------
    def snapshot(self) -> CatalogueSnapshot:
        """The current arrays, rebuilt only if the catalogue changed since the last call."""
        if self._dirty or self._snapshot is None:
            self._snapshot = self._build()
            self._dirty = self._popularity_dirty = False
            self.rebuilds += 1
        elif self._popularity_dirty:
            self._snapshot = replace(
                self._snapshot, popularity=self._popularity_array(self._snapshot.offer_ids)
            )
            self._popularity_dirty = False
        return self._snapshot

    def _popularity_array(self, offer_ids: tuple[str, ...]) -> F64:
        bulk = self._popularity_bulk
        if bulk is not None and bulk[0] is offer_ids:
            return bulk[1]
        single = self._popularity
        if bulk is None:
            pop = np.array([single.get(o, 0.0) for o in offer_ids], dtype=np.float64)
        else:  # the catalogue changed since the bulk was set
            named = dict(zip(bulk[0], bulk[1].tolist(), strict=True))
            pop = np.array(
                [named[o] if o in named else single.get(o, 0.0) for o in offer_ids],
                dtype=np.float64,
            )
        return _readonly(pop)

    def _offer_vector(self, offer: OfferRecord) -> Vector | None:
        if offer.vector is not None:
            vec = unit(offer.vector)
            if vec is not None:
                return vec
        known = [v for i in offer.item_ids if (v := self._item_vecs.get(i)) is not None]
        if known:
            vec = unit(np.mean(np.stack(known).astype(np.float64), axis=0))
            if vec is not None:
                return vec
        return hash_tags(offer.tags, self._dim)

    def _build(self) -> CatalogueSnapshot:
        ids = tuple(sorted(self._offers))
        offers = tuple(self._offers[o] for o in ids)
        n, dim = len(ids), self._dim
        previous, raw = self._snapshot, self._raw
        stale = self._stale
        # rows of the previous arrays to keep (-1: derive afresh)
        if previous is None or raw is None:
            keep = np.full(n, -1, dtype=np.intp)
        elif previous.offer_ids == ids:  # the same offers: every row where it was
            keep = np.arange(n, dtype=np.intp)
            keep[[row for o in stale if (row := previous.offer_index.get(o)) is not None]] = -1
        else:
            old_index = previous.offer_index
            keep = np.fromiter(
                (-1 if o in stale else old_index.get(o, -1) for o in ids), np.intp, count=n
            )
        kept = keep >= 0
        matrix = np.zeros((n, dim), dtype=np.float32)
        value = np.zeros(n, dtype=np.float64)
        priority = np.zeros(n, dtype=np.float64)
        valid_from = np.full(n, NO_START, dtype=np.int64)
        valid_until = np.full(n, NO_END, dtype=np.int64)
        channel_mask = np.zeros((n, len(CHANNELS)), dtype=np.bool_)
        repeatable = {i for i, item in self._items.items() if item.repeatable}
        repeatable.update(i for offer in offers if offer.repeatable for i in offer.item_ids)
        restock_prior = {
            i: round(item.restock_days * 86_400_000)
            for i, item in self._items.items()
            if item.restock_days is not None
        }
        offer_tags: list[tuple[str, ...]] = [()] * n
        if previous is not None and raw is not None and bool(kept.any()):
            rows = keep[kept]
            matrix[kept] = previous.matrix[rows]
            value[kept] = raw.value[rows]
            priority[kept] = raw.priority[rows]
            valid_from[kept] = previous.valid_from[rows]
            valid_until[kept] = previous.valid_until[rows]
            channel_mask[kept] = previous.channel_mask[rows]
            old_tags = previous.offer_tags
            for row in np.flatnonzero(kept).tolist():
                offer_tags[row] = old_tags[keep[row]]
        # equal tag lists shared, not copied (~6 MB of copies at 100,000 offers)
        shared: dict[tuple[str, ...], tuple[str, ...]] = {t: t for t in offer_tags}
        for row in np.flatnonzero(~kept).tolist():
            offer = offers[row]
            vec = self._offer_vector(offer)
            if vec is not None:
                matrix[row] = vec
            value[row] = offer.value
            priority[row] = offer.priority
            if offer.valid_from is not None:
                valid_from[row] = offer.valid_from
            if offer.valid_until is not None:
                valid_until[row] = offer.valid_until
            for channel in offer.channels:
                channel_mask[row, CHANNELS.index(channel)] = True
            tags = list(offer.tags)
            for item_id in offer.item_ids:
                item = self._items.get(item_id)
                if item is not None:
                    tags.extend(item.tags)
            norm = _norm_tags(tags)
            offer_tags[row] = shared.setdefault(norm, norm)
        item_rows: dict[str, list[int]] = {}
        for row, offer in enumerate(offers):
            for item_id in offer.item_ids:
                item_rows.setdefault(item_id, []).append(row)
        self._stale = set()
        self._tag_lists = {o.tags: o.tags for o in offers}  # only the lists still in use
        self._raw = _RawColumns(_readonly(value), _readonly(priority))
        vmax = float(value.max()) if n else 0.0
        value_norm = value / vmax if vmax > 0 else np.zeros(n, dtype=np.float64)
        pmax = float(np.abs(priority).max()) if n else 0.0
        priority_norm = priority / pmax if pmax > 0 else np.zeros(n, dtype=np.float64)

        vocabulary = {t for tags in offer_tags for t in tags}
        vocabulary.update(t for tags in self._item_tags.values() for t in tags)
        tag_names: list[str] = []
        tag_rows: list[Vector] = []
        for tag in sorted(vocabulary):
            tvec = self.tag_vector(tag)
            if tvec is not None:
                tag_names.append(tag)
                tag_rows.append(tvec)
        tag_matrix = (
            np.stack(tag_rows) if tag_rows else np.zeros((0, dim), dtype=np.float32)
        ).astype(np.float32)

        return CatalogueSnapshot(
            dim=dim,
            offer_ids=ids,
            offer_index=SortedIds(ids),  # the ids are sorted: no dictionary (~8 MB at 100k)
            offers=offers,
            matrix=_readonly(matrix),
            value_norm=_readonly(value_norm),
            priority_norm=_readonly(priority_norm),
            popularity=self._popularity_array(ids),
            valid_from=_readonly(valid_from),
            valid_until=_readonly(valid_until),
            channel_mask=_readonly(channel_mask),
            item_offers={k: _readonly(np.array(v, dtype=np.intp)) for k, v in item_rows.items()},
            offer_tags=tuple(offer_tags),
            tag_names=tuple(tag_names),
            tag_index={t: i for i, t in enumerate(tag_names)},
            tag_matrix=_readonly(tag_matrix),
            repeatable=frozenset(repeatable),
            restock_prior_ms=restock_prior,
        )


@dataclass(frozen=True)
class _RawColumns:
    """The snapshot rows' value and priority before normalisation."""

    value: F64
    priority: F64


def _norm_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Normalised, non-empty, de-duplicated tags in first-seen order, each string interned:
    100,000 offers repeat a few hundred tags, and a fresh copy of each (``str.lower`` makes
    one) took ~20 MB at that size."""
    return tuple(dict.fromkeys(intern(t) for t in (normalise_tag(x) for x in tags) if t))
