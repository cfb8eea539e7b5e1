"""The live item-neighbour table of a worker, mirrored from the compacted ``item-neighbours`` topic.

A record ``{"schema_version": 1, "item_id": ..., "neighbours": [[item_id, weight], ...]}``
(key = ``item_id``) replaces the item's neighbours; a null value deletes them. The table keeps
each item's best ``max_neighbours`` and turns them, lazily, into the
:class:`~app.core.cooccurrence.index.CooccurrenceIndex` that scoring reads: a burst of records costs
one rebuild, at the next scoring, like :meth:`app.core.catalog.Catalogue.snapshot`. Item ids are
interned once, so a rebuild stacks integer rows (no string work); the offer alignment of an
index with a catalogue snapshot is cached until either changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from app.core import defaults
from app.core.catalog import Catalogue, CatalogueSnapshot
from app.core.catalog_records import OfferRecord
from app.core.cooccurrence.index import (
    CooccurrenceIndex,
    OfferAlignment,
    RecentItemsConfig,
    SparseRow,
    offer_alignment,
    recent_rows,
    sparse_offer_scores,
    strongest_source,
)
from app.core.decoding import DEFAULT_MAX_BYTES, decode_model
from app.core.fields import SCHEMA_VERSION, Identifier, SchemaVersion
from app.core.reasons import Because

I32 = npt.NDArray[np.int32]
F32 = npt.NDArray[np.float32]

DEFAULT_MAX_NEIGHBOURS = defaults.NEIGHBOURS_MAX
"""Neighbours kept per item by default (the learned index keeps 200)."""

Weight = Annotated[float, Field(strict=True, ge=0.0)]


class NeighboursRecord(BaseModel):
    """One value of the ``item-neighbours`` topic, schema version 1 (unknown fields ignored).

    ``neighbours``: ``[item_id, weight]`` pairs (weight finite, >= 0), any order; an empty
    list leaves the item without neighbours.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    schema_version: SchemaVersion = SCHEMA_VERSION
    item_id: Identifier
    neighbours: tuple[tuple[Identifier, Weight], ...] = Field(default=(), max_length=10_000)


def decode_neighbours(
    raw: bytes | None, max_bytes: int = 4 * DEFAULT_MAX_BYTES
) -> NeighboursRecord:
    """Decode one value of the neighbours topic (at most ``max_bytes``, default 256 KiB: 200
    neighbours take about 8 KiB); raises :class:`~app.core.errors.EventRejected`."""
    return decode_model(NeighboursRecord, raw, max_bytes)


def neighbours_record(item_id: str, neighbours: Sequence[Sequence[object]]) -> bytes:
    """The JSON value of a neighbours record (as ``nbo embed --publish`` sends it)."""
    record = NeighboursRecord.model_validate(
        {"item_id": item_id, "neighbours": [list(n) for n in neighbours]}
    )
    return record.model_dump_json().encode()


class NeighbourTable:
    """Item id -> best neighbours, updatable, with a lazily rebuilt index (see module doc).

    ``max_neighbours``: neighbours kept per item, ``M`` (default 200); memory is about
    ``8 x M`` bytes per interned item. Not thread-safe; one per worker.
    """

    def __init__(self, max_neighbours: int = DEFAULT_MAX_NEIGHBOURS) -> None:
        if max_neighbours < 1:
            raise ValueError("max_neighbours must be at least 1")
        self._max = max_neighbours
        self._ids: list[str] = []
        self._rows: dict[str, int] = {}
        self._table: dict[int, tuple[I32, F32]] = {}
        self._index: CooccurrenceIndex | None = None
        self._aligned: tuple[CooccurrenceIndex, object, OfferAlignment] | None = None
        self.rebuilds = 0
        """How many times the index was rebuilt (for tests)."""

    def __len__(self) -> int:
        """Items that have neighbours."""
        return len(self._table)

    def _row(self, item_id: str) -> int:
        row = self._rows.get(item_id)
        if row is None:
            row = self._rows[item_id] = len(self._ids)
            self._ids.append(item_id)
        return row

    def upsert(self, item_id: str, neighbours: Sequence[tuple[str, float]]) -> None:
        """Replace the neighbours of ``item_id`` (weights >= 0; a repeated neighbour keeps its
        largest weight; the best ``max_neighbours`` are kept, ties by id). An empty list
        deletes them."""
        if not neighbours:
            self.delete(item_id)
            return
        names = [n for n, _ in neighbours]
        weights = np.array([w for _, w in neighbours], dtype=np.float64)
        if not bool(np.all(np.isfinite(weights))) or bool((weights < 0).any()):
            raise ValueError(f"neighbour weights of {item_id!r} must be finite and >= 0")
        get = self._rows.get
        found = [get(n, -1) for n in names]
        rows = np.array(
            [r if r >= 0 else self._row(n) for r, n in zip(found, names, strict=True)],
            dtype=np.int32,
        )
        order = np.lexsort((np.array(names), -weights))  # best first, ties by id
        rows, weights = rows[order], weights[order]
        if len(np.unique(rows)) < len(rows):  # a repeated neighbour: its first (best) stays
            first = np.sort(np.unique(rows, return_index=True)[1])
            rows, weights = rows[first], weights[first]
        self._table[self._row(item_id)] = (
            rows[: self._max],
            weights[: self._max].astype(np.float32),
        )
        self._index = None

    def delete(self, item_id: str) -> bool:
        """Remove the neighbours of ``item_id`` (tombstone); returns whether it had any."""
        row = self._rows.get(item_id)
        existed = row is not None and self._table.pop(row, None) is not None
        if existed:
            self._index = None
        return existed

    def neighbours_of(self, item_id: str) -> list[tuple[str, float]]:
        """The kept neighbours of ``item_id``, best first (empty if none)."""
        row = self._rows.get(item_id)
        if row is None or row not in self._table:
            return []
        rows, weights = self._table[row]
        return [(self._ids[int(r)], float(w)) for r, w in zip(rows, weights, strict=True)]

    def index(self) -> CooccurrenceIndex:
        """The current index, rebuilt only if the table changed since the last call."""
        if self._index is None:
            self._compact_if_sparse()
            width = max((len(r) for r, _ in self._table.values()), default=1)
            neighbours = np.full((len(self._ids), width), -1, dtype=np.int32)
            weights = np.zeros((len(self._ids), width), dtype=np.float32)
            for row, (rows, wts) in self._table.items():
                neighbours[row, : len(rows)] = rows
                weights[row, : len(wts)] = wts
            self._index = CooccurrenceIndex(tuple(self._ids), neighbours, weights)
            self.rebuilds += 1
        return self._index

    def _compact_if_sparse(self) -> None:
        """Intern the live ids again when most interned ids are gone (deleted items that no
        other item names): the index has one row per interned id."""
        live = np.zeros(len(self._ids), dtype=np.bool_)
        for row, (rows, _) in self._table.items():
            live[row] = True
            live[rows] = True
        if 2 * int(live.sum()) >= len(self._ids):
            return
        order = np.flatnonzero(live).tolist()
        remap = np.full(len(self._ids), -1, dtype=np.int32)
        remap[order] = np.arange(len(order), dtype=np.int32)
        self._ids = [self._ids[r] for r in order]
        self._rows = {item: k for k, item in enumerate(self._ids)}
        self._table = {int(remap[k]): (remap[r], w) for k, (r, w) in self._table.items()}

    def alignment(self, snapshot: CatalogueSnapshot) -> OfferAlignment:
        """Which offers of ``snapshot`` hold which index items; cached per index and offer
        layout (a popularity refresh makes a new snapshot with the same layout)."""
        index = self.index()
        cached = self._aligned
        if cached is None or cached[0] is not index or cached[1] is not snapshot.item_offers:
            alignment = offer_alignment(index, snapshot)
            cached = self._aligned = (index, snapshot.item_offers, alignment)
        return cached[2]

    def scores(
        self, recent: Sequence[Sequence[str]], snapshot: CatalogueSnapshot, cfg: RecentItemsConfig
    ) -> list[SparseRow]:
        """Per user, the co-occurrence part of each offer of ``snapshot`` with a positive one
        (:func:`~app.core.cooccurrence.index.sparse_offer_scores`), from each user's recent item
        ids, newest first."""
        index = self.index()
        return sparse_offer_scores(
            index, recent_rows(index, recent, cfg), self.alignment(snapshot), cfg
        )

    def because(
        self, recent: Sequence[str], cfg: RecentItemsConfig, catalogue: Catalogue
    ) -> Because:
        """A :data:`Because` for one user whose recent items are ``recent`` (newest first):
        the title (else the id) of the recent item contributing most to the offer's item."""
        index = self.index()
        return because_you_chose(index, recent, cfg, catalogue)


def because_you_chose(
    index: CooccurrenceIndex, recent: Sequence[str], cfg: RecentItemsConfig, catalogue: Catalogue
) -> Because:
    """A :data:`Because` over ``index`` for a user whose recent items are ``recent``."""

    def title(offer: OfferRecord) -> str | None:
        for item_id in offer.item_ids:
            source = strongest_source(index, recent, item_id, cfg)
            if source is not None:
                item = catalogue.item(source)
                return item.title if item is not None and item.title else source
        return None

    return title
