"""The strong simple baselines the engine is measured against, each updated in real time.

* ``popularity_positive``: positive events per offer so far (likes, purchases, ratings at or
  above ``min_rating``), updated with every event.
* ``ease`` (Steck 2019, "Embarrassingly Shallow Autoencoders"): item-item weights learned in
  closed form from the training matrix X (users x items: 1 for each positive interaction, 1
  for each interaction of any kind, or the rating's stars / 5: whichever the validation
  prefers, :data:`FITS`):
  ``P = (X'X + lambda I)^-1``, ``B = -P / diag(P)`` with a zero diagonal. A user's scores
  are ``x_u B``; x_u gains the item of every positive event as it happens, so the scores move
  with the stream (one row of B added per new positive).
* ``ease_recency``: the same B, recent history items weighing more: by age in event time
  (``2^(-age / half_life)``) or by position (the j-th newest item weighs ``decay^j``), the
  history holding the positives or every interaction, whichever the validation prefers.
* ``item_knn``: cosine similarity between the items' columns of X; a user's scores are the
  similarity rows of their last ``n_recent`` items (newest first), the j-th weighted by
  ``decay^j``.

Each is fitted on the training events only (or, with ``retrain_every_days``, refitted during
the test period on every event before the moment, ``refit``); the hyper-parameters are chosen
on a validation period inside the training data (:mod:`app.evaluation.baseline_tuning`). The
item-item matrices are dense over the items with an event in X (ml-latest-small: a few
thousand).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp  # type: ignore[import-untyped]

from app.core.catalog import CatalogueSnapshot
from app.core.cooccurrence.index import OfferAlignment
from app.evaluation.config import EASE, ITEM_KNN, POPULARITY_POSITIVE
from app.evaluation.methods import F64, _Immediate, _to_offers, alignment
from app.evaluation.metrics import RankingMetrics
from app.evaluation.replay import ItemOffers, Query
from app.learning.ease import EaseConfig, design_matrix, ease_weights
from app.learning.interactions import InteractionLog

F32 = npt.NDArray[np.float32]
Bools = npt.NDArray[np.bool_]


FITS = ("positives", "interactions", "ratings")
"""What the item-item weights may be learned from: X holds 1 per positive interaction, 1 per
interaction of any kind, or each rating's stars / 5 (1 for other interactions)."""


def design(log: InteractionLog, end: int, positive: Bools, fit: str) -> sp.csr_matrix:
    """X of the events before row ``end`` for ``fit`` (one of :data:`FITS`)."""
    if fit == "positives":
        return positive_matrix(log, end, positive)
    if fit == "interactions":
        return positive_matrix(log, end, np.ones_like(positive))
    if fit != "ratings":
        raise ValueError(f"fit {fit!r} is not one of {FITS}")
    # the stars rule of the engine's whole-history neighbours: stars / 5, others 1, at most 1
    return design_matrix(log.subset(np.arange(end)), EaseConfig(window=None, stars=True))


def positive_matrix(log: InteractionLog, end: int, positive: Bools) -> sp.csr_matrix:
    """X: users x items, 1 where the user had a positive event on the item before row ``end``."""
    rows = np.flatnonzero(positive[:end])
    x = sp.csr_matrix(
        (np.ones(rows.size), (log.user[rows], log.item[rows])), shape=(log.n_users, log.n_items)
    )
    x.data[:] = 1.0  # repeats count once
    return x


@dataclass(frozen=True, eq=False)
class ItemItem:
    """A dense item-item weight matrix over ``items`` (log item codes; other items score 0).
    ``position``: item code -> row of ``weights`` (-1: not an active item)."""

    items: npt.NDArray[np.intp]
    weights: F32
    position: npt.NDArray[np.intp]

    @classmethod
    def over(cls, items: npt.NDArray[np.intp], weights: F32, n_items: int) -> ItemItem:
        position = np.full(n_items, -1, dtype=np.intp)
        position[items] = np.arange(items.size)
        return cls(items, weights, position)

    def row(self, item: int) -> F32 | None:
        """Weights from ``item`` to every active item (``None``: an inactive item)."""
        k = int(self.position[item])
        return None if k < 0 else self.weights[k]

    def spread(self, active_scores: F64) -> F64:
        """Scores over active items -> scores over all items (0 elsewhere)."""
        out = np.zeros((*active_scores.shape[:-1], self.position.size))
        out[..., self.items] = active_scores
        return out


def fit_ease(x: sp.csr_matrix, lam: float) -> ItemItem:
    """EASE weights (module doc) over the items with at least one positive in ``x``."""
    active, b = ease_weights(x, lam)
    return ItemItem.over(active, b.astype(np.float32), x.shape[1])


def fit_cosine(x: sp.csr_matrix) -> ItemItem:
    """Cosine similarity between item columns of ``x`` (active items; zero diagonal)."""
    active = np.flatnonzero(np.asarray(x.sum(axis=0)).ravel() > 0)
    xa = x[:, active]
    gram = (xa.T @ xa).toarray().astype(np.float64)
    norms = np.sqrt(np.diag(gram))
    sim = gram / norms[:, None] / norms[None, :]
    np.fill_diagonal(sim, 0.0)
    return ItemItem.over(active.astype(np.intp), sim.astype(np.float32), x.shape[1])


class PositivePopularity(_Immediate):
    """Positive events per offer so far (module doc)."""

    def __init__(
        self,
        metrics: RankingMetrics,
        snapshot: CatalogueSnapshot,
        offers: ItemOffers,
        positive: Bools,
        name: str = POPULARITY_POSITIVE,
    ) -> None:
        super().__init__(name, metrics, snapshot, offers)
        self._positive = positive
        self._counts = np.zeros(snapshot.size)

    def _add(self, log: InteractionLog, start: int, end: int) -> None:
        rows = start + np.flatnonzero(self._positive[start:end])
        np.add.at(self._counts, self._offers.of_many(log.item[rows]), 1.0)

    def warm_up(self, log: InteractionLog, end: int) -> None:
        self._add(log, 0, end)

    def observe(self, log: InteractionLog, start: int, end: int) -> None:
        self._add(log, start, end)

    def _scores(self, query: Query) -> F64:
        return self._counts


class _ItemItemMethod(_Immediate):
    """Scores per item from an :class:`ItemItem` matrix, mapped to offers (best item)."""

    def __init__(
        self,
        name: str,
        metrics: RankingMetrics,
        snapshot: CatalogueSnapshot,
        offers: ItemOffers,
        matrix: ItemItem,
        refit: Callable[[int], ItemItem] | None = None,
    ) -> None:
        """``refit(end)``: the matrix learned from the rows before ``end`` (:meth:`retrain`;
        ``None``: frozen)."""
        super().__init__(name, metrics, snapshot, offers)
        self._matrix = matrix
        self._pairs: OfferAlignment = alignment(offers)
        self._refit = refit

    def retrain(self, log: InteractionLog, end: int) -> None:
        if self._refit is not None:
            self._matrix = self._refit(end)
            self._refitted(log, end)

    def _refitted(self, log: InteractionLog, end: int) -> None:
        """Called after the matrix was replaced (rebuild any state that depends on it)."""

    def _offer_scores(self, active_scores: F64) -> F64:
        per_item = self._matrix.spread(active_scores[None, :])
        scores: F64 = _to_offers(per_item, self._pairs, 0.0)[0]
        return scores


class RealTimeEase(_ItemItemMethod):
    """``x_u B`` with x_u updated by every event ``positive`` marks (module doc; the recency
    variant may mark every interaction); ``half_life_ms``
    weights history items by their age in event time, ``step_decay`` by their position (the
    j-th newest weighs ``step_decay^j``); ``None`` for both: all alike."""

    def __init__(
        self,
        metrics: RankingMetrics,
        snapshot: CatalogueSnapshot,
        offers: ItemOffers,
        matrix: ItemItem,
        positive: Bools,
        half_life_ms: float | None = None,
        name: str = EASE,
        step_decay: float | None = None,
        refit: Callable[[int], ItemItem] | None = None,
    ) -> None:
        super().__init__(name, metrics, snapshot, offers, matrix, refit)
        self._positive = positive
        self._half_life = half_life_ms
        self._step = step_decay
        # per user: scores over the active items, valued at event time t_ref; items in x_u
        self._state: dict[int, tuple[F64, int]] = {}
        self._items: dict[int, set[int]] = {}
        self._zero = np.zeros(matrix.items.size)

    def _add(self, log: InteractionLog, rows: npt.NDArray[np.intp]) -> None:
        half_life = self._half_life
        for r in rows.tolist():
            user, item, ts = int(log.user[r]), int(log.item[r]), int(log.ts_ms[r])
            held = self._items.setdefault(user, set())
            if item in held:
                continue
            held.add(item)
            row = self._matrix.row(item)
            scores, t_ref = self._state.get(user, (self._zero, ts))
            if self._step is not None:  # every older item moves one place back
                scores = scores * self._step + (row if row is not None else 0.0)
            elif row is None:
                continue
            elif half_life is None:
                scores = scores + row
            elif ts >= t_ref:  # the history ages to ts, the new item weighs 1
                scores = scores * 2.0 ** (-(ts - t_ref) / half_life) + row
                t_ref = ts
            else:  # a late event: its item weighs what its age at t_ref says
                scores = scores + row * 2.0 ** (-(t_ref - ts) / half_life)
            self._state[user] = (scores, t_ref)

    def warm_up(self, log: InteractionLog, end: int) -> None:
        self._add(log, np.flatnonzero(self._positive[:end]))

    def _refitted(self, log: InteractionLog, end: int) -> None:
        """Every history is scored afresh with the new weights (the same order, the same
        decay as if they had been the weights all along)."""
        self._state, self._items = {}, {}
        self._zero = np.zeros(self._matrix.items.size)
        self.warm_up(log, end)

    def observe(self, log: InteractionLog, start: int, end: int) -> None:
        self._add(log, start + np.flatnonzero(self._positive[start:end]))

    def _scores(self, query: Query) -> F64:
        scores, _ = self._state.get(query.user, (self._zero, 0))
        return self._offer_scores(scores)


class RealTimeItemKnn(_ItemItemMethod):
    """Cosine rows of the user's last ``n_recent`` items, the j-th newest weighted
    ``decay^j`` (module doc)."""

    def __init__(
        self,
        metrics: RankingMetrics,
        snapshot: CatalogueSnapshot,
        offers: ItemOffers,
        matrix: ItemItem,
        n_recent: int = 5,
        decay: float = 0.8,
        name: str = ITEM_KNN,
        refit: Callable[[int], ItemItem] | None = None,
    ) -> None:
        super().__init__(name, metrics, snapshot, offers, matrix, refit)
        self._n_recent = n_recent
        self._decay = decay

    def _scores(self, query: Query) -> F64:
        scores = np.zeros(self._matrix.items.size)
        for j, item in enumerate(query.recent[: self._n_recent]):
            row = self._matrix.row(item)
            if row is not None:
                scores += self._decay**j * row
        return self._offer_scores(scores)
