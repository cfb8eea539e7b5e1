"""Learned item-item weights (EASE, Steck 2019) as the engine's item-neighbour index.

EASE learns item-item weights in closed form from a matrix X (rows x items, 0/1 or stars / 5):
``P = (X'X + lambda I)^-1``, ``B = -P / diag(P)`` with a zero diagonal; ``B[i, j]`` is how much
having item ``i`` predicts item ``j`` once every other item is accounted for (so a
blockbuster that co-occurs with everything does not neighbour everything).

The rows of X are either whole user histories (``window = None``), or the sliding windows of
``window`` consecutive distinct items of each user's time-ordered history (``window = W``):
then ``X'X`` counts how often two items occur within ``W`` positions of each other, the
ordered, session-local signal the co-occurrence index learns from, de-confounded the EASE way.
Whole histories may weigh each rated item by its stars / 5 (``stars``): the long-range taste
signal, which the model blends into the windows' index (:mod:`app.learning.model`).

:func:`sparsify` keeps each item's ``max_neighbours`` largest positive weights: the same
:class:`~app.core.cooccurrence.index.CooccurrenceIndex` as :mod:`app.learning.cooccurrence`
learns, published on the ``item-neighbours`` topic in the same records, so the workers score
it with the same code (:func:`app.core.cooccurrence.index.sparse_offer_scores`). Negative
weights are dropped: a neighbour table holds non-negative weights.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.linalg  # type: ignore[import-untyped]
import scipy.sparse as sp  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.core.cooccurrence.index import CooccurrenceIndex
from app.learning.interactions import InteractionLog

F64 = npt.NDArray[np.float64]
Indices = npt.NDArray[np.intp]


class EaseConfig(BaseModel):
    """Parameters of :func:`learn_ease_neighbours` (defaults tuned on a validation period of
    ml-latest-small, see ``docs/learning.md``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lam: float = Field(default=2000.0, gt=0.0)
    """L2 penalty ``lambda`` of the closed form (default 2000; a window of W items puts
    about W on the diagonal of X'X per occurrence, hence a larger lambda than per user)."""
    window: int | None = Field(default=20, ge=1, le=1000)
    """Rows of X: sliding windows of this many consecutive distinct items per user (default
    20); ``None``: one row per user (classic EASE)."""
    positives_only: bool = False
    """Learn from positive events only (likes, purchases, ratings >= ``min_rating``); default
    false: every interaction, as the co-occurrence index and the workers' recent items."""
    min_rating: float = Field(default=4.0, ge=0.5, le=5.0)
    """Stars from which a rating is positive (with ``positives_only``; default 4)."""
    stars: bool = False
    """Whole histories only (``window = None``): a rated item weighs its stars / 5 in its
    user's row (other interactions 1; an item rated twice at most 1) instead of 1."""
    max_neighbours: int = Field(default=200, ge=1)
    """Neighbours kept per item, ``M`` (default 200)."""
    max_items: int = Field(default=12_000, ge=2, le=50_000)
    """Items the closed form is solved over: the ``max_items`` in most rows of X (default
    12,000; the solve holds one dense ``n x n`` float64 matrix, 1.15 GB at 12,000, and takes
    O(n^3)); rarer items get no EASE neighbours (``neighbours = both`` keeps their
    co-occurrence ones)."""

    @model_validator(mode="after")
    def _stars_need_whole_histories(self) -> EaseConfig:
        if self.stars and self.window is not None:
            raise ValueError("stars weigh whole histories: set window to None")
        return self


GRAM_ROWS = 2_000
"""Rows of X per step of :func:`_gram`."""


def _gram(x: sp.csr_matrix) -> F64:
    """``X'X`` as a dense matrix, summed over blocks of :data:`GRAM_ROWS` rows: a sparse
    product of the whole X is nearly dense at thousands of items and took several times the
    dense matrix's memory on its way."""
    n = x.shape[1]
    gram = np.zeros((n, n), dtype=np.float64)
    for start in range(0, x.shape[0], GRAM_ROWS):
        block = x[start : start + GRAM_ROWS]
        part = (block.T @ block).tocoo()
        gram[part.row, part.col] += part.data  # a product has each cell once
    return gram


def ease_weights(x: sp.spmatrix, lam: float) -> tuple[Indices, F64]:
    """EASE weights of a rows x items matrix (0/1, or stars / 5) over its items with at least
    one row: ``(active item columns, B)`` with ``B`` active x active (module doc)."""
    csc = sp.csc_matrix(x)
    active = np.flatnonzero(np.diff(csc.indptr) > 0).astype(np.intp)
    gram = _gram(sp.csr_matrix(csc[:, active]))
    gram[np.diag_indices_from(gram)] += lam
    # in place: one n x n buffer (X'X + lambda I, then its inverse, then B), so 12,000 items
    # take 1.15 GB rather than two or three such matrices; X'X is symmetric, so its Fortran
    # view (the transpose) is the same matrix and LAPACK works on it without a copy
    p = scipy.linalg.inv(gram.T, overwrite_a=True, check_finite=False).T
    diagonal = np.diag(p).copy()
    p /= -diagonal[None, :]
    b: F64 = p
    np.fill_diagonal(b, 0.0)
    return active, b


def sparsify(
    item_ids: tuple[str, ...], active: Indices, weights: F64, max_neighbours: int
) -> CooccurrenceIndex:
    """The index over ``item_ids`` whose item ``active[r]`` neighbours its ``max_neighbours``
    largest positive ``weights[r]`` (ties: lower item first); other items have none."""
    rows, cols = np.nonzero(weights > 0)
    data = weights[rows, cols]
    return _top(item_ids, active[rows], active[cols], data, max_neighbours)


def _top(
    item_ids: tuple[str, ...], rows: Indices, cols: Indices, data: F64, m: int
) -> CooccurrenceIndex:
    """The index keeping the ``m`` largest ``data`` of each row (ties: lower column first)."""
    n = len(item_ids)
    order = np.lexsort((cols, -data, rows))
    rows, cols, data = rows[order], cols[order], data[order]
    starts = np.searchsorted(rows, np.arange(n))
    slot = np.arange(rows.size) - starts[rows]
    keep = slot < m
    width = max(1, min(m, int(slot.max()) + 1 if slot.size else 1))
    neighbours = np.full((n, width), -1, dtype=np.int32)
    weights = np.zeros((n, width), dtype=np.float32)
    neighbours[rows[keep], slot[keep]] = cols[keep]
    weights[rows[keep], slot[keep]] = data[keep]
    return CooccurrenceIndex(item_ids, neighbours, weights)


def design_matrix(log: InteractionLog, cfg: EaseConfig) -> sp.csr_matrix:
    """X of ``log`` (module doc): one row per user (binary, or ``cfg.stars``), or per sliding
    window of ``cfg.window`` consecutive distinct items of one user (time order, repeats
    collapsed; binary)."""
    rows = np.arange(len(log))
    if cfg.positives_only:
        rows = np.flatnonzero(log.positives(cfg.min_rating))
    order = rows[np.lexsort((rows, log.user[rows]))]  # by user; time order is kept
    users = log.user[order].astype(np.int64)
    items = log.item[order].astype(np.int64)
    values: F64 | None = None
    if cfg.window is None:
        r, c = users, items
        shape = (log.n_users, log.n_items)
        if cfg.stars:
            values = np.nan_to_num(log.rating[order], nan=5.0) / 5.0
    else:
        if items.size:
            repeat = np.zeros(items.size, dtype=np.bool_)
            repeat[1:] = (users[1:] == users[:-1]) & (items[1:] == items[:-1])
            users, items = users[~repeat], items[~repeat]
        n = items.size
        parts = [
            (np.flatnonzero(users[: n - d] == users[d:]), items[d:][users[: n - d] == users[d:]])
            for d in range(min(cfg.window, n))
        ]
        r = np.concatenate([p[0] for p in parts]) if parts else np.empty(0, dtype=np.int64)
        c = np.concatenate([p[1] for p in parts]) if parts else np.empty(0, dtype=np.int64)
        shape = (n, log.n_items)
    if values is None:
        x = sp.csr_matrix((np.ones(r.size), (r, c)), shape=shape)
        x.data[:] = 1.0  # repeats count once
    else:
        x = sp.csr_matrix((values, (r, c)), shape=shape)
        x.data = np.minimum(x.data, 1.0)  # an item rated twice weighs at most 1
    return x


def learn_ease_neighbours(log: InteractionLog, cfg: EaseConfig | None = None) -> CooccurrenceIndex:
    """The EASE neighbour index of ``log`` over all of its items (module doc), its weights
    divided by the largest (scores are normalised per user: the scale is immaterial)."""
    cfg = cfg if cfg is not None else EaseConfig()
    x = sp.csc_matrix(design_matrix(log, cfg))
    per_item = np.diff(x.indptr)
    if int(np.count_nonzero(per_item)) > cfg.max_items:
        kept = np.sort(np.argsort(-per_item, kind="stable")[: cfg.max_items])
        x = x[:, kept]
        active, weights = ease_weights(x, cfg.lam)
        active = kept[active]
    else:
        active, weights = ease_weights(x, cfg.lam)
    top = float(weights.max()) if weights.size else 0.0
    if top > 0:  # the largest weight 1: records keep 6 decimals of each weight
        weights = weights / top
    return sparsify(log.item_ids, active, weights, cfg.max_neighbours)


def _as_matrix(index: CooccurrenceIndex) -> sp.csr_matrix:
    """An index as a sparse items x items matrix of its weights, scaled by its largest."""
    n = len(index.item_ids)
    keep = index.neighbours >= 0
    rows = np.nonzero(keep)[0]
    weights = index.weights[keep].astype(np.float64)
    top = float(weights.max()) if weights.size else 0.0
    scaled = weights / top if top > 0 else weights
    return sp.csr_matrix((scaled, (rows, index.neighbours[keep])), shape=(n, n))


def blend_indexes(
    first: CooccurrenceIndex, second: CooccurrenceIndex, share: float, max_neighbours: int
) -> CooccurrenceIndex:
    """``share`` x ``first`` + (1 - ``share``) x ``second``, each scaled by its largest
    weight, keeping each item's ``max_neighbours`` best; both over the same ``item_ids``."""
    if first.item_ids != second.item_ids:
        raise ValueError("both indexes must be over the same item ids")
    blend = (share * _as_matrix(first) + (1.0 - share) * _as_matrix(second)).tocsr()
    blend.eliminate_zeros()
    rows = np.repeat(np.arange(blend.shape[0]), np.diff(blend.indptr))
    return _top(first.item_ids, rows, blend.indices.astype(np.intp), blend.data, max_neighbours)
