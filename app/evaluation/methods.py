"""The methods compared by the evaluation, each a :class:`~app.evaluation.replay.Method`.

* ``engine_tags`` / ``engine_collab``: the engine's own code: profiles are updated by
  :func:`app.core.profile.apply_events` with the catalogue's item vectors
  (:class:`app.core.catalog.Catalogue`), the popularity prior is the engine's
  :class:`app.core.popularity.PopularityFeed` fed with every event and pushed into the
  catalogue before each scoring batch (so it is at most ``batch_size`` queries old, never
  ahead); both rank with :func:`app.core.scoring.score_batch`, as the worker does,
  ``engine_collab`` with the sparse co-occurrence part of the user's recent items
  (:func:`app.core.cooccurrence.index.sparse_offer_scores`, weighted by ``w_cooccurrence``).
* ``popularity``: interactions per offer so far (updated by every event).
* ``random``: a uniformly random order (seeded).
* ``batch_model``: trained once before the split and never updated: the user's factor vector
  from the factorisation dotted with the item factors; users unknown at the split get the
  popularity at the split.

Queries that need a matrix product are deferred and scored ``batch_size`` at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from app.core.calibration import calibrated_scores
from app.core.catalog import Catalogue, CatalogueSnapshot
from app.core.cooccurrence.hybrid import top_k
from app.core.cooccurrence.index import (
    CooccurrenceIndex,
    OfferAlignment,
    RecentItemsConfig,
    SparseRow,
    sparse_offer_scores,
)
from app.core.popularity import PopularityFeed
from app.core.profile import PendingEvent, Profile, ProfileConfig, apply_events
from app.core.scoring import ScoringConfig, score_batch
from app.core.vectors import Vector
from app.evaluation.calibration import TopLists
from app.evaluation.metrics import RankingMetrics, ranks_from_scores
from app.evaluation.replay import EligibilityEpochs, ItemOffers, Method, Query
from app.learning.interactions import InteractionLog
from app.learning.model import CollabModel

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
Floats = npt.NDArray[np.floating[Any]]


def _record_matrix(
    metrics: RankingMetrics, queries: Sequence[Query], scores: Floats, k_max: int
) -> None:
    """Record a B x N score matrix (already masked) for ``queries``."""
    ranks = ranks_from_scores(scores, [q.targets for q in queries])
    tops = top_k(scores, k_max)
    for b, query in enumerate(queries):
        top = tops[b][np.isfinite(scores[b, tops[b]])]
        metrics.record(query.qid, query.user, query.cold, int(ranks[b]), top, query.returning)


def alignment(offers: ItemOffers) -> OfferAlignment:
    """The (item code, offer row) pairs of ``offers`` as a core :class:`OfferAlignment`."""
    items, rows = offers.pairs()
    one_to_one = len(np.unique(rows)) == len(rows)
    return OfferAlignment(items, rows, offers.n_offers, one_to_one)


def _to_offers(per_item: F64, pairs: OfferAlignment, fill: float) -> F64:
    """B x N offer scores (an offer's best item), ``fill`` for offers without items."""
    out = np.full((per_item.shape[0], pairs.n_offers), fill)
    if pairs.one_to_one:
        out[:, pairs.offer_rows] = per_item[:, pairs.item_rows]
    else:
        np.maximum.at(out.T, pairs.offer_rows, per_item[:, pairs.item_rows].T)
    return out


def _mask_seen(scores: Floats, queries: Sequence[Query], offers: ItemOffers) -> None:
    """Set the offers of every query's seen items to ``-inf`` (in place)."""
    for b, query in enumerate(queries):
        scores[b, offers.of_many(query.seen)] = -np.inf


class _Deferred(Method):
    """Collects queries with a per-query input row and scores them in batches, grouped so
    that all queries of a group share the catalogue's eligible offers."""

    def __init__(
        self,
        name: str,
        metrics: RankingMetrics,
        snapshot: CatalogueSnapshot,
        batch_size: int,
    ) -> None:
        super().__init__(name, metrics)
        self._epochs = EligibilityEpochs(snapshot)
        self._batch_size = batch_size
        self._pending: list[tuple[Query, F32]] = []

    def _defer(self, query: Query, row: F32) -> None:
        if not self._pending:
            self._new_batch()
        self._pending.append((query, row))
        if len(self._pending) >= self._batch_size:
            self.finish()

    def finish(self) -> None:
        groups: dict[int, list[tuple[Query, F32]]] = {}
        for query, row in self._pending:
            groups.setdefault(self._epochs.epoch(query.ts_ms), []).append((query, row))
        self._pending = []
        for group in groups.values():
            queries = [q for q, _ in group]
            self._score(queries, np.stack([r for _, r in group]), queries[0].ts_ms)

    def _new_batch(self) -> None:
        """Called before the first query of each batch is deferred."""

    def _score(self, queries: list[Query], rows: F32, now_ms: int) -> None:
        raise NotImplementedError


class _EngineMethod(_Deferred):
    """Profiles replayed with the engine's update rule over one catalogue's item vectors."""

    def __init__(
        self,
        name: str,
        metrics: RankingMetrics,
        catalogue: Catalogue,
        item_ids: Sequence[str],
        profile_cfg: ProfileConfig,
        batch_size: int,
        popularity: PopularityFeed | None,
    ) -> None:
        super().__init__(name, metrics, catalogue.snapshot(), batch_size)
        self._catalogue = catalogue
        self._snap = catalogue.snapshot()
        self._cfg = profile_cfg
        self._vectors: list[Vector | None] = [catalogue.item_vector(i) for i in item_ids]
        self._item_ids = item_ids
        self._tags = [catalogue.item_tags(i) for i in item_ids]
        self._profiles: dict[int, Profile] = {}
        self._zero = np.zeros(catalogue.dim, dtype=np.float32)
        self._popularity = popularity
        self.top_lists: TopLists | None = None
        """When set, every query's top list is kept there with its calibrated scores."""

    def _observe_popularity(self, log: InteractionLog, rows: Sequence[int]) -> None:
        if self._popularity is None:
            return
        for r in rows:
            item = int(log.item[r])
            self._popularity.observe(
                self._item_ids[item], self._tags[item], float(log.weight[r]), int(log.ts_ms[r])
            )

    def _new_batch(self) -> None:
        """Push the popularity prior into the catalogue, as the worker does periodically."""
        if self._popularity is None:
            return
        self._popularity.push()
        self._snap = self._catalogue.snapshot()

    def _pending_events(self, log: InteractionLog, rows: Sequence[int]) -> list[PendingEvent]:
        return [
            PendingEvent(
                event_id=log.event_ids[r],
                partition=0,
                offset=r,
                ts_ms=int(log.ts_ms[r]),
                weight=float(log.weight[r]),
                vector=self._vectors[int(log.item[r])],
            )
            for r in rows
        ]

    def warm_up(self, log: InteractionLog, end: int) -> None:
        self._observe_popularity(log, range(end))
        users = log.user[:end]
        order = np.argsort(users, kind="stable")
        bounds = np.flatnonzero(np.diff(users[order])) + 1
        for rows in np.split(order, bounds):
            if rows.size:
                result = apply_events(None, self._pending_events(log, rows.tolist()), self._cfg)
                self._profiles[int(users[rows[0]])] = result.profile

    def observe(self, log: InteractionLog, start: int, end: int) -> None:
        self._observe_popularity(log, range(start, end))
        user = int(log.user[start])
        events = self._pending_events(log, range(start, end))
        self._profiles[user] = apply_events(self._profiles.get(user), events, self._cfg).profile

    def ask(self, query: Query) -> None:
        profile = self._profiles.get(query.user)
        self._defer(query, profile.vec if profile is not None else self._zero)

    def _rank_and_record(
        self,
        queries: list[Query],
        rows: F32,
        now_ms: int,
        scoring: ScoringConfig,
        cooccurrence: Sequence[SparseRow] | None = None,
    ) -> None:
        """Rank with :func:`score_batch` (seen items excluded) and record each query."""
        exclude = [[self._item_ids[c] for c in q.seen.tolist()] for q in queries]
        ranked = score_batch(
            rows, now_ms, self._catalogue, scoring, exclude, reasons=False,
            cooccurrence=cooccurrence,
        )  # fmt: skip
        index = self._snap.offer_index
        for query, offers in zip(queries, ranked, strict=True):
            top = np.array([index[o.offer_id] for o in offers], dtype=np.intp)
            hits = np.flatnonzero(np.isin(top, query.targets))
            rank = int(hits[0]) if hits.size else self.metrics.k_max
            self.metrics.record(query.qid, query.user, query.cold, rank, top, query.returning)
            if self.top_lists is not None:
                self.top_lists.add(query, top.tolist(), calibrated_scores(offers))


class EngineTags(_EngineMethod):
    """The engine as it runs: tag-hash item vectors, :func:`score_batch` (module docs)."""

    def __init__(
        self,
        metrics: RankingMetrics,
        catalogue: Catalogue,
        item_ids: Sequence[str],
        profile_cfg: ProfileConfig,
        scoring: ScoringConfig,
        batch_size: int,
        popularity: PopularityFeed | None,
        name: str = "engine_tags",
    ) -> None:
        super().__init__(name, metrics, catalogue, item_ids, profile_cfg, batch_size, popularity)
        self._scoring = scoring.model_copy(update={"k": metrics.k_max})

    def _score(self, queries: list[Query], rows: F32, now_ms: int) -> None:
        self._rank_and_record(queries, rows, now_ms, self._scoring)


class EngineCollab(_EngineMethod):
    """Learned item vectors plus the co-occurrence part of recent items (module docs)."""

    def __init__(
        self,
        metrics: RankingMetrics,
        catalogue: Catalogue,
        item_ids: Sequence[str],
        item_offers: ItemOffers,
        profile_cfg: ProfileConfig,
        scoring: ScoringConfig,
        index: CooccurrenceIndex,
        w_cooccurrence: float,
        recent: RecentItemsConfig,
        batch_size: int,
        popularity: PopularityFeed | None,
        name: str = "engine_collab",
        retrainer: Callable[[InteractionLog], CollabModel] | None = None,
    ) -> None:
        """``retrainer``: learns a model from a log (:meth:`retrain`; ``None``: frozen)."""
        super().__init__(name, metrics, catalogue, item_ids, profile_cfg, batch_size, popularity)
        self._check_index(index)
        self._scoring = scoring.model_copy(
            update={"w_cooccurrence": w_cooccurrence, "k": metrics.k_max}
        )
        self._index = index
        self._recent = recent
        self._pairs = alignment(item_offers)  # index rows are the log's item codes
        self._retrainer = retrainer

    def _check_index(self, index: CooccurrenceIndex) -> None:
        if tuple(index.item_ids[: len(self._item_ids)]) != tuple(self._item_ids):
            raise ValueError("the co-occurrence index must be built over the log's item codes")

    def retrain(self, log: InteractionLog, end: int) -> None:
        """Learn a model from the rows before ``end`` and use it from now on, as the workers
        take a nightly ``nbo embed``'s item vectors and neighbours: the profiles are kept
        (the vectors stay rotated onto the tag-hash space), items without a learned vector
        keep theirs."""
        if self._retrainer is None:
            return
        self.finish()  # queries asked before now are scored with the model they were asked of
        model = self._retrainer(log.subset(np.arange(end)))
        self._check_index(model.cooccurrence)
        for item_id, vector in model.vectors.items():
            item = self._catalogue.item(item_id)
            if item is not None:
                vec = tuple(float(x) for x in vector)
                self._catalogue.upsert_item(item.model_copy(update={"vector": vec}))
        self._vectors = [self._catalogue.item_vector(i) for i in self._item_ids]
        self._index = model.cooccurrence
        self._snap = self._catalogue.snapshot()

    def _score(self, queries: list[Query], rows: F32, now_ms: int) -> None:
        parts: list[SparseRow] | None = None
        if self._scoring.w_cooccurrence > 0:
            recent = np.full((len(queries), self._recent.n_recent), -1, dtype=np.int64)
            for b, q in enumerate(queries):
                r = q.recent[: self._recent.n_recent]
                recent[b, : len(r)] = r
            parts = sparse_offer_scores(self._index, recent, self._pairs, self._recent)
        self._rank_and_record(queries, rows, now_ms, self._scoring, parts)


class BatchModel(_Deferred):
    """Frozen at the split: factor scores for known users, else popularity (module docs)."""

    def __init__(
        self,
        metrics: RankingMetrics,
        snapshot: CatalogueSnapshot,
        item_offers: ItemOffers,
        user_factors: F64,
        item_factors: F64,
        known_users: npt.NDArray[np.bool_],
        batch_size: int,
        name: str = "batch_model",
    ) -> None:
        super().__init__(name, metrics, snapshot, batch_size)
        self._snap = snapshot
        self._offers = item_offers
        self._users = user_factors
        self._items = item_factors
        self._known = known_users
        self._popularity = np.zeros(snapshot.size)
        self._pairs = alignment(item_offers)

    def warm_up(self, log: InteractionLog, end: int) -> None:
        np.add.at(self._popularity, self._offers.of_many(log.item[:end]), 1.0)

    def ask(self, query: Query) -> None:
        self._defer(query, np.zeros(1, dtype=np.float32))

    def _score(self, queries: list[Query], rows: F32, now_ms: int) -> None:
        users = np.array([q.user for q in queries], dtype=np.int64)
        known = self._known[users]
        scores = _to_offers(self._users[users] @ self._items.T, self._pairs, -np.inf)
        scores[~known] = self._popularity
        scores[:, self._epochs.ineligible(now_ms)] = -np.inf
        _mask_seen(scores, queries, self._offers)
        _record_matrix(self.metrics, queries, scores, self.metrics.k_max)


class _Immediate(Method):
    """Scores each query at once (state changes with every event)."""

    def __init__(
        self, name: str, metrics: RankingMetrics, snapshot: CatalogueSnapshot, offers: ItemOffers
    ) -> None:
        super().__init__(name, metrics)
        self._snap = snapshot
        self._offers = offers
        self._epochs = EligibilityEpochs(snapshot)

    def _scores(self, query: Query) -> F64:
        raise NotImplementedError

    def ask(self, query: Query) -> None:
        scores = self._scores(query)[None, :].copy()
        scores[:, self._epochs.ineligible(query.ts_ms)] = -np.inf
        _mask_seen(scores, [query], self._offers)
        _record_matrix(self.metrics, [query], scores, self.metrics.k_max)


class Popularity(_Immediate):
    """Interactions per offer so far (every event counts once for each offer of its item)."""

    def __init__(
        self,
        metrics: RankingMetrics,
        snapshot: CatalogueSnapshot,
        offers: ItemOffers,
        name: str = "popularity",
    ) -> None:
        super().__init__(name, metrics, snapshot, offers)
        self._counts = np.zeros(snapshot.size)

    def warm_up(self, log: InteractionLog, end: int) -> None:
        np.add.at(self._counts, self._offers.of_many(log.item[:end]), 1.0)

    def observe(self, log: InteractionLog, start: int, end: int) -> None:
        np.add.at(self._counts, self._offers.of_many(log.item[start:end]), 1.0)

    def _scores(self, query: Query) -> F64:
        return self._counts


class RandomOrder(_Immediate):
    """A fresh uniformly random order for every query, from a seeded generator."""

    def __init__(
        self,
        metrics: RankingMetrics,
        snapshot: CatalogueSnapshot,
        offers: ItemOffers,
        seed: int,
        name: str = "random",
    ) -> None:
        super().__init__(name, metrics, snapshot, offers)
        self._rng = np.random.default_rng(seed)

    def _scores(self, query: Query) -> F64:
        return self._rng.random(self._snap.size)
