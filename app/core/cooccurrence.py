"""Item-to-item neighbours ("who chose X also chose Y") scored from a user's recent items.

A :class:`CooccurrenceIndex` holds, for each item, at most ``M`` neighbour items with
non-negative weights (learned offline by :func:`app.learning.cooccurrence.learn_cooccurrence`).
Its size is bounded (``n_items x M``) and it changes only when a new index is published.

The per-user state it needs is the user's most recent distinct items, newest first: exactly
what Redis keeps in ``nbo:{u:<id>}:seen`` (a zset scored by event time; ``ZREVRANGE 0 n-1``).
The score of a candidate item ``j`` for a user whose recent items are ``r_0`` (newest) ...
``r_{L-1}`` is

    ``s(j) = sum_l decay^l * weight(r_l -> j)``,

divided by its largest value over all items (so the part lies in ``[0, 1]``; a user without
recent items, or whose recent items have no neighbours, scores 0 everywhere). An offer scores
the largest ``s`` of its items.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from app.core.catalog import CatalogueSnapshot

I32 = npt.NDArray[np.int32]
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


class RecentItemsConfig(BaseModel):
    """How a user's recent items are turned into co-occurrence scores."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_recent: int = Field(default=20, ge=1, le=200)
    """Most recent distinct items used, newest first (default 20; Redis keeps 200)."""
    recency_decay: float = Field(default=0.8, gt=0.0, le=1.0)
    """Weight of the ``l``-th most recent item is ``recency_decay ** l`` (default 0.8)."""


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
    return out


@dataclass(frozen=True, eq=False)
class OfferAlignment:
    """Which offer rows of a catalogue snapshot contain which index items (pairs)."""

    item_rows: npt.NDArray[np.intp]
    offer_rows: npt.NDArray[np.intp]
    n_offers: int
    one_to_one: bool


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
