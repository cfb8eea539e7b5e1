"""Predicted next order of repeatable items: each person's repurchase cycle per item.

A catalogue item may be ``repeatable`` (groceries, consumables). For those, a person's state
keeps, per item, the time of the latest purchase, the learned interval between the person's
purchases of it and how many purchases it was learned from (:class:`Cycle`):

* the first purchase starts a cycle without an interval of its own: the item's prior (its
  population interval, the catalogue's ``restock_days``, else :attr:`RestockConfig.prior_ms`)
  stands in for it;
* every later purchase at least :attr:`RestockConfig.min_gap_ms` after the latest one adds
  the gap ``g`` (at most :attr:`RestockConfig.max_interval_ms`): the interval becomes ``g``
  after the second purchase, then ``a * g + (1 - a) * interval`` (an exponentially weighted
  mean, ``a`` = :attr:`RestockConfig.smoothing`);
* a purchase closer than ``min_gap_ms`` to the latest one (the same shopping trip) or older
  than it (late) changes nothing.

An item is **due** at ``t`` when ``t >= last + fraction * interval``
(:attr:`RestockConfig.due_fraction`); a due item is offered again (purchased items are
otherwise excluded for good), with the score part ``restock`` = ``min(1, (t - last) /
interval)`` (:func:`restock_rows`), and its reason says so
(:data:`app.core.reasons.REASON_RESTOCK`).

The update only ever sees events applied for the first time (the caller passes the fresh
events of :func:`app.core.profile.apply_batch`), so a redelivered batch changes nothing. At
most :attr:`RestockConfig.items_max` items are kept per person (the most recently bought).
Pure: plain Python and numpy.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from typing import NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from app.core import defaults
from app.core.catalog import CatalogueSnapshot
from app.core.cooccurrence.index import SparseRow

RESTOCK_PART = "restock"
"""Name of the score part of a due item's offers (reported when a ranking is given it)."""


class RestockConfig(BaseModel):
    """Parameters of the repurchase cycles (defaults in :mod:`app.core.defaults`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    due_fraction: float = Field(default=defaults.RESTOCK_DUE_FRACTION, gt=0.0, le=10.0)
    """A repeatable purchased item is due from ``last + due_fraction * interval`` on."""
    smoothing: float = Field(default=defaults.RESTOCK_SMOOTHING, gt=0.0, le=1.0)
    """Weight of the newest gap in the interval's exponentially weighted mean."""
    prior_ms: int = Field(default=defaults.RESTOCK_PRIOR_S * 1000, gt=0)
    """Interval of a person who bought an item once, when the catalogue gives none."""
    min_gap_ms: int = Field(default=defaults.RESTOCK_MIN_GAP_S * 1000, ge=1)
    """Purchases of one item closer than this are one shopping trip, not a cycle."""
    max_interval_ms: int = Field(default=defaults.RESTOCK_MAX_INTERVAL_S * 1000, gt=0)
    """Longest gap (and interval) learned."""
    items_max: int = Field(default=defaults.RESTOCK_ITEMS_MAX, ge=0, le=10_000)
    """Most items whose cycle is kept per person (the most recently bought ones)."""


class Cycle(NamedTuple):
    """One person's repurchase cycle of one item: latest purchase (event time, ms), learned
    interval (ms; 0 until a second purchase) and the number of purchases counted."""

    last_ms: int
    interval_ms: int
    purchases: int


Cycles = Mapping[str, Cycle]
"""Item id -> the person's :class:`Cycle` of it."""
MAX_COUNT = 1_000_000
"""Purchases counted per cycle at most (a bounded number on the wire and in storage)."""


def update_cycles(
    cycles: Cycles, purchases: Iterable[tuple[str, int]], cfg: RestockConfig
) -> dict[str, Cycle]:
    """``cycles`` after ``purchases`` (item id, event time ms) of repeatable items, applied in
    time order (module doc); bounded to the ``items_max`` most recently bought items."""
    out = dict(cycles)
    for item_id, ts in sorted(purchases, key=lambda p: (p[1], p[0])):
        old = out.get(item_id)
        if old is None:
            out[item_id] = Cycle(ts, 0, 1)
            continue
        gap = ts - old.last_ms
        if gap < cfg.min_gap_ms:
            continue  # the same shopping trip, or a late event: no new gap
        gap = min(gap, cfg.max_interval_ms)
        if old.interval_ms <= 0:
            interval = gap
        else:
            interval = round(cfg.smoothing * gap + (1 - cfg.smoothing) * old.interval_ms)
        out[item_id] = Cycle(ts, max(1, interval), min(old.purchases + 1, MAX_COUNT))
    if len(out) > cfg.items_max:
        newest = sorted(out.items(), key=lambda kv: (kv[1].last_ms, kv[0]), reverse=True)
        out = dict(newest[: cfg.items_max])
    return out


def interval_of(cycle: Cycle, prior_ms: int | None, cfg: RestockConfig) -> int:
    """The interval a cycle is due by: its own once learned, else the item's prior, else the
    configured one."""
    if cycle.interval_ms > 0:
        return cycle.interval_ms
    return prior_ms if prior_ms is not None and prior_ms > 0 else cfg.prior_ms


def due_items(
    cycles: Cycles,
    at_ms: int,
    cfg: RestockConfig,
    repeatable: Collection[str],
    priors: Mapping[str, int] | None = None,
) -> dict[str, float]:
    """Item id -> due-ness in ``[min(1, due_fraction), 1]`` of each item of ``cycles`` that is
    still ``repeatable`` and due at ``at_ms`` (``priors``: item id -> prior interval, ms)."""
    priors = priors or {}
    due: dict[str, float] = {}
    for item_id, cycle in cycles.items():
        if item_id not in repeatable:
            continue
        ratio = (at_ms - cycle.last_ms) / interval_of(cycle, priors.get(item_id), cfg)
        if ratio >= cfg.due_fraction:
            due[item_id] = min(1.0, ratio)
    return due


def restock_rows(due: Mapping[str, float], snap: CatalogueSnapshot) -> SparseRow:
    """The ``restock`` part of one person (offer rows of ``snap``, values): every offer
    holding a due item gets the largest due-ness of its items."""
    best: dict[int, float] = {}
    for item_id, value in due.items():
        rows = snap.item_offers.get(item_id)
        if rows is None:
            continue
        for row in rows.tolist():
            best[row] = max(best.get(row, 0.0), value)
    ordered = sorted(best)
    return (
        np.array(ordered, dtype=np.intp),
        np.array([best[r] for r in ordered], dtype=np.float64),
    )


def cycles_to_json(cycles: Cycles) -> bytes:
    """Compact JSON ``[[item_id, last_ms, interval_ms, purchases], ...]`` sorted by item."""
    rows = [[item, *cycles[item]] for item in sorted(cycles)]
    return json.dumps(rows, separators=(",", ":")).encode()


def cycles_from_json(raw: bytes | str) -> dict[str, Cycle]:
    """The inverse of :func:`cycles_to_json`."""
    return {str(item): Cycle(int(a), int(b), int(c)) for item, a, b, c in json.loads(raw)}
