"""Learning the item-to-item neighbour index of :mod:`app.core.cooccurrence.index` from a log.

Each user's items are taken in time order, consecutive repeats of one item collapsed; an item
and each of the ``window`` items that follow it form a pair weighted ``distance_decay^(d-1)``
(``d`` = positions apart), counted in both directions when ``symmetric``. Pair sums are
divided by ``((n_i + 1) * (n_j + 1)) ** popularity_exponent`` (``n`` = occurrences) so that
blockbusters do not neighbour everything, and each item keeps its ``max_neighbours`` best.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field

from app.core.cooccurrence.index import CooccurrenceIndex
from app.learning.interactions import InteractionLog


class CooccurrenceConfig(BaseModel):
    """Parameters of :func:`learn_cooccurrence` (defaults tuned on a validation period of
    ml-latest-small, see ``docs/learning.md``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    window: int = Field(default=10, ge=1)
    """Following items paired with each item (default 10)."""
    distance_decay: float = Field(default=0.85, gt=0.0, le=1.0)
    """Weight of a pair ``d`` positions apart is ``distance_decay ** (d - 1)`` (default 0.85)."""
    popularity_exponent: float = Field(default=0.3, ge=0.0, le=1.0)
    """Exponent of the popularity damping (default 0.3; 0.5 would be cosine-like)."""
    max_neighbours: int = Field(default=200, ge=1)
    """Neighbours kept per item, ``M`` (default 200)."""
    symmetric: bool = True
    """Count a pair in both directions (default true)."""


def learn_cooccurrence(
    log: InteractionLog, cfg: CooccurrenceConfig | None = None
) -> CooccurrenceIndex:
    """The neighbour index of ``log`` over all of its items (see module docs)."""
    cfg = cfg if cfg is not None else CooccurrenceConfig()
    n_items = log.n_items
    order = np.lexsort((np.arange(len(log)), log.user))  # by user; time order is kept
    users = log.user[order].astype(np.int64)
    items = log.item[order].astype(np.int64)
    if len(items):
        repeat = np.zeros(len(items), dtype=np.bool_)
        repeat[1:] = (users[1:] == users[:-1]) & (items[1:] == items[:-1])
        users, items = users[~repeat], items[~repeat]
    src: list[np.ndarray] = []
    dst: list[np.ndarray] = []
    val: list[np.ndarray] = []
    for d in range(1, cfg.window + 1):
        if len(items) <= d:
            break
        same = users[:-d] == users[d:]
        a, b = items[:-d][same], items[d:][same]
        w = np.full(len(a), cfg.distance_decay ** (d - 1))
        src.append(a)
        dst.append(b)
        val.append(w)
        if cfg.symmetric:
            src.append(b)
            dst.append(a)
            val.append(w)
    if src:
        pairs = sp.coo_matrix(
            (np.concatenate(val), (np.concatenate(src), np.concatenate(dst))),
            shape=(n_items, n_items),
        ).tocsr()
    else:
        pairs = sp.csr_matrix((n_items, n_items))
    pairs.sum_duplicates()
    pairs.setdiag(0.0)
    pairs.eliminate_zeros()
    coo = pairs.tocoo()
    counts = np.bincount(items, minlength=n_items).astype(np.float64) + 1.0
    data = coo.data / (counts[coo.row] * counts[coo.col]) ** cfg.popularity_exponent
    return _top_neighbours(log.item_ids, coo.row, coo.col, data, cfg.max_neighbours)


def _top_neighbours(
    item_ids: tuple[str, ...],
    rows: np.ndarray,
    cols: np.ndarray,
    data: np.ndarray,
    m: int,
) -> CooccurrenceIndex:
    """Keep the ``m`` best neighbours per row (ties: lower neighbour row first)."""
    n = len(item_ids)
    order = np.lexsort((cols, -data, rows))
    rows, cols, data = rows[order], cols[order], data[order]
    starts = np.searchsorted(rows, np.arange(n))
    slot = np.arange(len(rows)) - starts[rows]
    keep = slot < m
    width = max(1, min(m, int(slot.max()) + 1 if len(slot) else 1))
    neighbours = np.full((n, width), -1, dtype=np.int32)
    weights = np.zeros((n, width), dtype=np.float32)
    neighbours[rows[keep], slot[keep]] = cols[keep]
    weights[rows[keep], slot[keep]] = data[keep]
    return CooccurrenceIndex(item_ids, neighbours, weights)
