"""Item-to-item neighbours ("who chose X also chose Y") scored from a user's recent items.

A :class:`CooccurrenceIndex` holds, for each item, at most ``M`` neighbour items with
non-negative weights (learned offline by :func:`app.learning.cooccurrence.learn_cooccurrence`).
Its size is bounded (``n_items x M``) and it changes only when a new index is published.

The per-user state it needs is the user's most recent distinct items, newest first: exactly
what Redis keeps in ``nbo:{u:<id>}:seen`` (a zset scored by event time; ``ZREVRANGE 0 n-1``).
The score of a candidate item ``j`` for a user whose recent items are ``r_0`` (newest) ...
``r_{L-1}`` is

    ``s(j) = sum_l decay^l * weight(r_l -> j)``,

divided by its largest value over all items and raised to the power ``exponent`` (so the part
lies in ``[0, 1]``, the best item at 1; an exponent below 1 gives diminishing returns: a
second-best item at half the best sum scores ``0.5 ** 0.7 = 0.62``, not 0.5). A user without
recent items, or whose recent items have no neighbours, scores 0 everywhere. An offer scores
the largest part of its items.

:func:`cooccurrence_scores` returns that part as a dense U x N matrix (simple, for small
catalogues and tests); :func:`sparse_offer_scores` returns, per user, only the offers with a
positive score (at most ``n_recent x M`` items each), which is what
:func:`app.core.scoring.score_batch` takes: the same numbers, bit for bit, at a cost that grows
with the neighbours touched instead of with U x N.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from app.core import defaults
from app.core.catalog import CatalogueSnapshot

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
Indices = npt.NDArray[np.intp]
SparseRow = tuple[Indices, F64]
"""One user's sparse part: offer rows (distinct, any order) and their values."""

DENSE_SUM_FACTOR = 32
"""Neighbour weights are summed in a dense users x items array when it has at most this many
cells per neighbour entry touched, else by sorting the entries (same sums, bit for bit)."""
CHUNK_CELLS = 1 << 18
"""Users x items cells summed at once (2 MiB of float64: stays in cache, twice as fast as one
array for a whole batch)."""


class RecentItemsConfig(BaseModel):
    """How a user's recent items are turned into co-occurrence scores."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_recent: int = Field(default=defaults.RECENT_ITEMS, ge=1, le=200)
    """Most recent distinct items used, newest first (default 20; Redis keeps 200)."""
    recency_decay: float = Field(default=defaults.RECENCY_DECAY, gt=0.0, le=1.0)
    """Weight of the ``l``-th most recent item is ``recency_decay ** l`` (default 0.8)."""
    exponent: float = Field(default=defaults.COOCCURRENCE_EXPONENT, gt=0.0, le=4.0)
    """Power of the max-normalised sums (default 0.7; 1: the sums as they are). Monotone, so
    it changes how the part weighs against the others, never its order."""


@dataclass(frozen=True, eq=False)
class CooccurrenceIndex:
    """Top-``M`` neighbours per item (row ``i`` = ``item_ids[i]``).

    ``neighbours`` (n x M, int32): neighbour rows, best first, ``-1`` for an empty slot.
    ``weights`` (n x M, float32): their non-negative weights (0 in empty slots).
    """

    item_ids: tuple[str, ...]
    neighbours: I32
    weights: F32
    index: Mapping[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.neighbours.shape != self.weights.shape or self.neighbours.ndim != 2:
            raise ValueError("neighbours and weights must be n x M arrays of the same shape")
        if self.neighbours.shape[0] != len(self.item_ids):
            raise ValueError("one row of neighbours per item is required")
        if bool((self.weights < 0).any()):
            raise ValueError("neighbour weights must be non-negative")
        object.__setattr__(self, "index", {item: k for k, item in enumerate(self.item_ids)})

    @property
    def max_neighbours(self) -> int:
        """``M``, the neighbour slots per item."""
        return int(self.neighbours.shape[1])

    def neighbours_of(self, item_id: str) -> list[tuple[str, float]]:
        """The neighbours of an item with their weights, best first (empty if unknown)."""
        row = self.index.get(item_id)
        if row is None:
            return []
        return [
            (self.item_ids[int(n)], float(w))
            for n, w in zip(self.neighbours[row], self.weights[row], strict=True)
            if n >= 0
        ]

    def rows(self, item_ids: Sequence[str]) -> I32:
        """Rows of ``item_ids`` (``-1`` for items the index does not know)."""
        return np.array([self.index.get(i, -1) for i in item_ids], dtype=np.int32)

    def to_records(self) -> list[dict[str, Any]]:
        """One JSON-ready record per item with neighbours:
        ``{"item_id": ..., "neighbours": [[item_id, weight], ...]}`` (best first)."""
        return [
            {"item_id": item, "neighbours": [[n, round(w, 6)] for n, w in nbrs]}
            for item in self.item_ids
            if (nbrs := self.neighbours_of(item))
        ]

    @classmethod
    def from_records(
        cls, records: Sequence[Mapping[str, Any]], max_neighbours: int | None = None
    ) -> CooccurrenceIndex:
        """Build an index from :meth:`to_records` output (``max_neighbours`` caps ``M``)."""
        table = {
            str(r["item_id"]): [(str(n), float(w)) for n, w in r["neighbours"]] for r in records
        }
        return cls.from_neighbours(table, max_neighbours)

    @classmethod
    def from_neighbours(
        cls, table: Mapping[str, Sequence[tuple[str, float]]], max_neighbours: int | None = None
    ) -> CooccurrenceIndex:
        """Build an index from item id -> ``[(neighbour id, weight), ...]`` (any order)."""
        ids = list(dict.fromkeys([*table, *(n for nbrs in table.values() for n, _ in nbrs)]))
        index = {item: k for k, item in enumerate(ids)}
        width = max((len(v) for v in table.values()), default=0)
        width = max(1, min(width, max_neighbours) if max_neighbours is not None else width)
        neighbours = np.full((len(ids), width), -1, dtype=np.int32)
        weights = np.zeros((len(ids), width), dtype=np.float32)
        for item, nbrs in table.items():
            best = sorted(nbrs, key=lambda nw: (-nw[1], nw[0]))[:width]
            for slot, (n, w) in enumerate(best):
                neighbours[index[item], slot] = index[n]
                weights[index[item], slot] = w
        return cls(tuple(ids), neighbours, weights)


def recent_rows(
    index: CooccurrenceIndex, recent: Sequence[Sequence[str]], cfg: RecentItemsConfig
) -> I32:
    """U x ``n_recent`` rows of each user's recent item ids (newest first), ``-1`` padded.

    Items the index does not know keep their slot (their weight is lost), like in Redis.
    """
    out = np.full((len(recent), cfg.n_recent), -1, dtype=np.int32)
    for u, items in enumerate(recent):
        rows = index.rows(list(items)[: cfg.n_recent])
        out[u, : len(rows)] = rows
    return out


def item_scores(index: CooccurrenceIndex, rows: npt.ArrayLike, cfg: RecentItemsConfig) -> F64:
    """U x n co-occurrence scores over the index's items, each row max-normalised to [0, 1].

    ``rows``: U x L recent item rows, newest first, ``-1`` for none (see :func:`recent_rows`).
    """
    recent = np.asarray(rows, dtype=np.int64)
    n_users, length = recent.shape
    n_items = len(index.item_ids)
    if n_users == 0 or n_items == 0:
        return np.zeros((n_users, n_items))
    position_weight = cfg.recency_decay ** np.arange(length, dtype=np.float64)
    valid = recent >= 0
    safe = np.where(valid, recent, 0)
    nbr = index.neighbours[safe].astype(np.int64)  # U x L x M
    wts = index.weights[safe].astype(np.float64) * (position_weight * valid)[:, :, None]
    keep = nbr >= 0
    flat = (np.arange(n_users)[:, None, None] * n_items + nbr)[keep]
    scores = np.bincount(flat, weights=wts[keep], minlength=n_users * n_items)
    scores = scores.reshape(n_users, n_items)
    top = scores.max(axis=1, keepdims=True)
    out: F64 = np.zeros_like(scores)
    np.divide(scores, top, out=out, where=top > 0)
    return _powered(out, cfg)


def _powered(values: F64, cfg: RecentItemsConfig) -> F64:
    """``values ** cfg.exponent`` in place (values in [0, 1]; 1 leaves them as they are)."""
    if cfg.exponent != 1.0:
        np.power(values, cfg.exponent, out=values)
    return values


@dataclass(frozen=True, eq=False)
class OfferAlignment:
    """Which offer rows of a catalogue snapshot contain which index items (pairs).

    ``one_to_one``: every offer row appears in at most one pair (an offer holds at most one
    index item; an item may be in several offers). ``item_ptr`` / ``offers_by_item``: the
    pairs grouped by item row (CSR; computed), so the offers of item ``i`` are
    ``offers_by_item[item_ptr[min(i, n)] : item_ptr[min(i, n) + 1]]`` with ``n`` the largest
    item row + 1 (``item_ptr`` has ``n + 2`` entries; rows past ``n`` have no offers).
    """

    item_rows: npt.NDArray[np.intp]
    offer_rows: npt.NDArray[np.intp]
    n_offers: int
    one_to_one: bool
    item_ptr: npt.NDArray[np.intp] = field(init=False, repr=False)
    offers_by_item: npt.NDArray[np.intp] = field(init=False, repr=False)
    at_most_one: bool = field(init=False, repr=False)
    """No item is in more than one offer (then :meth:`offers_of` is a plain gather)."""
    offer_of_item: npt.NDArray[np.intp] = field(init=False, repr=False)
    """With :attr:`at_most_one`: item row -> its offer row, ``-1`` for none (``n + 1``
    entries; the last stands for every row past ``n``)."""

    def __post_init__(self) -> None:
        items = np.asarray(self.item_rows, dtype=np.intp)
        order = np.argsort(items, kind="stable")
        by_item = items[order]
        n = int(by_item[-1]) + 1 if by_item.size else 0
        ptr = np.searchsorted(by_item, np.arange(n + 2)).astype(np.intp)
        object.__setattr__(self, "item_ptr", ptr)
        offers = np.asarray(self.offer_rows, dtype=np.intp)[order]
        object.__setattr__(self, "offers_by_item", offers)
        counts = np.diff(ptr)
        object.__setattr__(self, "at_most_one", bool(np.all(counts <= 1)))
        single = np.full(n + 1, -1, dtype=np.intp)
        if self.at_most_one:
            has = np.flatnonzero(counts[: n + 1])
            single[has] = offers[ptr[has]]
        object.__setattr__(self, "offer_of_item", single)

    def offers_of(self, items: npt.ArrayLike) -> tuple[Indices, Indices]:
        """For item rows ``items`` (>= 0): ``(which, offer_rows)``, one entry per (item,
        offer) pair, ``which`` indexing ``items``, in the order of ``items``."""
        rows = np.minimum(np.asarray(items, dtype=np.intp), len(self.item_ptr) - 2)
        if self.at_most_one:
            offer = self.offer_of_item[rows]
            found = np.flatnonzero(offer >= 0)
            return found.astype(np.intp), offer[found]
        start = self.item_ptr[rows]
        counts = self.item_ptr[rows + 1] - start
        which = np.repeat(np.arange(len(rows), dtype=np.intp), counts)
        offsets = np.arange(len(which), dtype=np.intp) - np.repeat(
            np.cumsum(counts) - counts, counts
        )
        return which, self.offers_by_item[start[which] + offsets]


def offer_alignment(index: CooccurrenceIndex, snapshot: CatalogueSnapshot) -> OfferAlignment:
    """The (index item, offer) pairs of a snapshot; compute once per snapshot."""
    items: list[int] = []
    offers: list[int] = []
    for item_id, offer_rows in snapshot.item_offers.items():
        row = index.index.get(item_id)
        if row is None:
            continue
        for o in offer_rows:
            items.append(row)
            offers.append(int(o))
    offer_arr = np.array(offers, dtype=np.intp)
    one_to_one = len(np.unique(offer_arr)) == len(offer_arr)
    return OfferAlignment(np.array(items, dtype=np.intp), offer_arr, snapshot.size, one_to_one)


def offer_scores(scores: npt.ArrayLike, alignment: OfferAlignment) -> F64:
    """U x N offer scores from U x n item scores: an offer gets its best item's score."""
    item = np.asarray(scores, dtype=np.float64)
    out = np.zeros((item.shape[0], alignment.n_offers))
    if alignment.one_to_one:
        out[:, alignment.offer_rows] = item[:, alignment.item_rows]
    else:
        np.maximum.at(out.T, alignment.offer_rows, item[:, alignment.item_rows].T)
    return out


def _sum_by_key(keys: I64, weights: F64, n_cells: int) -> tuple[I64, F64]:
    """Distinct ``keys`` in ``[0, n_cells)`` (ascending) with their summed ``weights`` (key
    ``n_cells`` marks an entry to drop), each sum accumulated in input order (as
    ``np.bincount`` does, so equal to the dense sums bit for bit)."""
    if n_cells <= DENSE_SUM_FACTOR * max(len(keys), 1):
        sums: F64 = np.asarray(np.bincount(keys, weights, n_cells + 1), dtype=np.float64)
        present = np.flatnonzero(sums[:n_cells] > 0)  # weights >= 0: the rest add nothing
        return present.astype(np.int64), sums[present]
    distinct, inverse = np.unique(keys, return_inverse=True)
    summed: F64 = np.asarray(np.bincount(inverse.ravel(), weights), dtype=np.float64)
    kept = distinct < n_cells
    return distinct[kept].astype(np.int64), summed[kept]


def sparse_offer_scores(
    index: CooccurrenceIndex, rows: npt.ArrayLike, alignment: OfferAlignment, cfg: RecentItemsConfig
) -> list[SparseRow]:
    """Per user, the offers with a positive co-occurrence score and that score (in (0, 1]).

    ``rows``: U x L recent item rows, newest first, ``-1`` for none (:func:`recent_rows`).
    Equal to the positive entries of ``offer_scores(item_scores(index, rows, cfg),
    alignment)`` (bit for bit); offer rows are distinct within a user, in no set order.
    """
    recent = np.asarray(rows, dtype=np.int64)
    n_users, length = recent.shape
    n_items = len(index.item_ids)
    empty: list[SparseRow] = [
        (np.empty(0, dtype=np.intp), np.empty(0, dtype=np.float64)) for _ in range(n_users)
    ]
    if n_users == 0 or n_items == 0 or len(alignment.offers_by_item) == 0:
        return empty
    position_weight = cfg.recency_decay ** np.arange(length, dtype=np.float64)
    chunk = max(1, CHUNK_CELLS // n_items)
    user_parts: list[I64] = []
    item_parts: list[I64] = []
    sum_parts: list[F64] = []
    for start in range(0, n_users, chunk):  # a user's sums depend on its own entries only
        block = recent[start : start + chunk]
        valid = block >= 0
        safe = np.where(valid, block, 0)
        nbr = index.neighbours[safe].astype(np.int64)  # u x L x M
        wts = index.weights[safe].astype(np.float64) * (position_weight * valid)[:, :, None]
        n_cells = len(block) * n_items
        user_base = np.arange(len(block), dtype=np.int64)[:, None, None] * n_items
        flat = np.where(nbr >= 0, user_base + nbr, n_cells)  # empty slots: dropped
        keys, block_sums = _sum_by_key(flat.ravel(), wts.ravel(), n_cells)
        user_parts.append(keys // n_items + start)
        item_parts.append(keys % n_items)
        sum_parts.append(block_sums)
    users, items = np.concatenate(user_parts), np.concatenate(item_parts)
    sums = np.concatenate(sum_parts)
    if len(users) == 0:
        return empty
    # each user's largest sum (keys ascend, so each user's entries are contiguous)
    starts = np.flatnonzero(np.concatenate(([True], users[1:] != users[:-1])))
    top = np.repeat(np.maximum.reduceat(sums, starts), np.diff(np.append(starts, len(users))))
    values = np.zeros_like(sums)
    np.divide(sums, top, out=values, where=top > 0)
    _powered(values, cfg)
    which, offers = alignment.offers_of(items)
    off_users, off_values = users[which], values[which]
    if not alignment.one_to_one:  # an offer of several items: its best item's score
        key2 = off_users * alignment.n_offers + offers
        distinct, inverse = np.unique(key2, return_inverse=True)
        best = np.zeros(len(distinct))
        np.maximum.at(best, inverse.ravel(), off_values)
        off_users, offers, off_values = (
            distinct // alignment.n_offers,
            (distinct % alignment.n_offers).astype(np.intp),
            best,
        )
    positive = off_values > 0
    off_users, offers, off_values = off_users[positive], offers[positive], off_values[positive]
    bounds = np.searchsorted(off_users, np.arange(n_users + 1))  # grouped by user, ascending
    return [
        (offers[bounds[u] : bounds[u + 1]], off_values[bounds[u] : bounds[u + 1]])
        for u in range(n_users)
    ]


def cooccurrence_scores(
    index: CooccurrenceIndex,
    recent: Sequence[Sequence[str]],
    snapshot: CatalogueSnapshot,
    cfg: RecentItemsConfig,
) -> F64:
    """U x N co-occurrence part for the offers of ``snapshot`` (in [0, 1]), from each user's
    recent item ids, newest first. Convenience for the pipeline (see module docs)."""
    rows = recent_rows(index, recent, cfg)
    return offer_scores(item_scores(index, rows, cfg), offer_alignment(index, snapshot))


def strongest_source(
    index: CooccurrenceIndex, recent: Sequence[str], item_id: str, cfg: RecentItemsConfig
) -> str | None:
    """The recent item that contributes most to ``item_id``'s score (for a reason such as
    "Because you chose <title>"), or ``None`` when none contributes."""
    target = index.index.get(item_id)
    if target is None:
        return None
    best: tuple[float, str] | None = None
    for pos, source in enumerate(list(recent)[: cfg.n_recent]):
        row = index.index.get(source)
        if row is None:
            continue
        hit = np.flatnonzero(index.neighbours[row] == target)
        if hit.size:
            contribution = float(index.weights[row, hit[0]]) * cfg.recency_decay**pos
            if contribution > 0 and (best is None or contribution > best[0]):
                best = (contribution, source)
    return best[1] if best is not None else None
