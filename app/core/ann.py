"""Approximate top-K scoring for large catalogues: ANN candidates, then exact rescoring.

:func:`app.core.scoring.score_batch` scores every offer for every user: a U x N matrix and a
top-K partition of it (at 100,000 offers and 500 users about 1 s per batch on 2 cores, most of
it the partition). :class:`CandidateIndex` scores only a few candidates per user:

- the ``candidates`` offers whose vectors are nearest (largest inner product of unit vectors,
  i.e. cosine) to the user's, found by an inverted-file index over the snapshot's offer
  matrix (faiss ``IndexIVFScalarQuantizer`` holding the vectors as 8-bit codes: a quarter of
  the memory of ``IndexIVFFlat``'s float32 copy, 19 MB less at 100,000 offers, with the same
  recall, since a shortlist of the candidates is rescored exactly anyway), built once per
  offer matrix;
- the ``static_candidates`` eligible offers with the largest user-independent part
  (value + popularity + priority + exploration), the same for every user and recomputed at
  every call (it changes with popularity, exploration draws and time; the matrix does not).

An offer outside both sets has (up to the index's own misses) a lower cosine than the user's
``candidates``-th nearest and a lower static part than the ``static_candidates``-th best, so it
rarely reaches a top-K. The candidates are rescored exactly as ``score_batch`` scores offers
(same parts, same float32 ranking, same tie-break by offer id, same exclusions), so the result
has the same form and every returned offer has exactly the score ``score_batch`` gives it.
Only recall is approximate: ``python -m app.bench.ann_recall`` measures it against exact
scoring.

Exact ``score_batch`` is used instead below ``min_offers`` offers (where it costs under ~0.2 s
per 500 users and loses no recall), when ``w_affinity <= 0`` (nearest vectors are then not the
best), when K exceeds the candidates, and for any user left with fewer offers than exact
scoring would return.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import faiss
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from app.core import defaults
from app.core.catalog import Catalogue, CatalogueSnapshot
from app.core.ranked import ScoredOffer
from app.core.scoring import (
    MAX_SCORE_CELLS,
    ScoringConfig,
    score_batch,
    scored_offers,
    static_parts,
    unit_rows,
)

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

SHORTLIST_PER_K = 2
"""Candidates per offer returned that are rescored exactly (the index's similarities come from
8-bit codes: a shortlist of 2K by them held the exact top-K as often as float16 codes did,
recall@10 0.9817 against 0.9815 at 100,000 offers, ``python -m app.bench.ann_recall``)."""


class AnnConfig(BaseModel):
    """When and how :class:`CandidateIndex` retrieves candidates (defaults measured at 100k).

    See ``docs/ann.md`` for the measurements behind the defaults.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_offers: int = Field(default=defaults.ANN_MIN_OFFERS, ge=0)
    """Catalogues with fewer offers are scored exactly (default 20,000)."""
    candidates: int = Field(default=200, ge=1)
    """Nearest offers by cosine retrieved per user (default 200)."""
    static_candidates: int = Field(default=1_000, ge=0)
    """Best offers by the user-independent part, added for every user (default 1,000)."""
    probes: int = Field(default=8, ge=1)
    """Inverted lists searched per user (faiss ``nprobe``, default 8)."""
    lists_per_sqrt_offer: float = Field(default=1.0, gt=0)
    """Inverted lists = this x sqrt(N), at least 1 (default 1.0: 316 lists at 100k)."""
    train_per_list: int = Field(default=64, ge=39)
    """Offers sampled per list to train the lists' k-means (default 64; faiss wants >= 39)."""
    seed: int = 1234
    """Seed of that k-means and its sample (default 1234): the same matrix, the same index."""


@dataclass
class IndexStats:
    """Counters of a :class:`CandidateIndex` (for metrics and tests)."""

    builds: int = 0
    """Offer matrices indexed (one per new snapshot matrix)."""
    approximate_users: int = 0
    """Users ranked from candidates."""
    exact_users: int = 0
    """Users ranked by exact ``score_batch`` (small catalogue, short candidate list, ...)."""


class CandidateIndex:
    """Scores like :func:`~app.core.scoring.score_batch`, from ANN candidates on large catalogues.

    Holds one faiss index of the latest snapshot's offer matrix; a snapshot with another
    matrix (a catalogue change: the matrix object is replaced; a popularity refresh keeps it)
    triggers a rebuild at the next call. Not thread-safe; one per worker.
    """

    def __init__(self, config: AnnConfig | None = None) -> None:
        self.config = config or AnnConfig()
        self.stats = IndexStats()
        self._matrix: F32 | None = None
        self._index: faiss.IndexIVFScalarQuantizer | None = None

    def score_batch(
        self,
        user_vecs: npt.ArrayLike,
        now_ms: int,
        catalogue: Catalogue,
        cfg: ScoringConfig,
        exclude: Sequence[Collection[str]] | None = None,
        *,
        reasons: bool = True,
        exploration: npt.NDArray[np.float64] | None = None,
    ) -> list[Sequence[ScoredOffer]]:
        """Top-K eligible offers for each of U users, best first (as ``score_batch``).

        Same arguments, checks and result form as :func:`~app.core.scoring.score_batch`.
        """
        users = np.asarray(user_vecs, dtype=np.float32)
        snap = catalogue.snapshot()
        n_users = users.shape[0] if users.ndim == 2 else 0
        explore = (
            np.zeros(snap.size) if exploration is None else np.asarray(exploration, np.float64)
        )
        valid_explore = explore.shape == (snap.size,) and bool(np.all(np.isfinite(explore)))
        if (
            not self.uses_index(snap, cfg)
            or n_users == 0
            or users.shape[1] != snap.dim
            or not valid_explore  # score_batch refuses it
        ):
            self.stats.exact_users += n_users
            return score_batch(
                users, now_ms, catalogue, cfg, exclude, reasons=reasons, exploration=exploration
            )
        if exclude is not None and len(exclude) != n_users:
            raise ValueError(f"exclude has {len(exclude)} entries for {n_users} users")
        index = self._index_of(snap)
        ranker = _Ranker(snap, cfg, now_ms, explore, self.config.static_candidates)
        rows = max(1, MAX_SCORE_CELLS // (self.config.candidates + ranker.static_rows.size))
        results: list[Sequence[ScoredOffer]] = []
        for start in range(0, n_users, rows):
            block = unit_rows(users[start : start + rows])
            part = None if exclude is None else exclude[start : start + rows]
            sims, found = index.search(np.ascontiguousarray(block), self.config.candidates)
            results += ranker.rank(block, np.asarray(sims), np.asarray(found), part, reasons)
        short = ranker.short_users(results, exclude)
        if short:  # too few candidates survived eligibility and exclusions: rank exactly
            redo = score_batch(
                users[short],
                now_ms,
                catalogue,
                cfg,
                None if exclude is None else [exclude[u] for u in short],
                reasons=reasons,
                exploration=exploration,
            )
            for u, row in zip(short, redo, strict=True):
                results[u] = row
        self.stats.exact_users += len(short)
        self.stats.approximate_users += n_users - len(short)
        return results

    def prepare(self, catalogue: Catalogue) -> bool:
        """Index the catalogue's current offer matrix now, if it is large enough and not yet
        indexed (so that no batch waits for the build); returns whether it built."""
        snap = catalogue.snapshot()
        if snap.size < max(self.config.min_offers, 1) or self._matrix is snap.matrix:
            return False
        self._index_of(snap)
        return True

    def uses_index(self, snap: CatalogueSnapshot, cfg: ScoringConfig) -> bool:
        """Whether a batch on ``snap`` is ranked from candidates (else exactly)."""
        return (
            snap.size >= max(self.config.min_offers, 1)
            and cfg.w_affinity > 0
            and cfg.k <= self.config.candidates
        )

    def _index_of(self, snap: CatalogueSnapshot) -> faiss.IndexIVFScalarQuantizer:
        """The index of ``snap.matrix``, built if the matrix is not the indexed one."""
        if self._index is not None and self._matrix is snap.matrix:
            return self._index
        cfg = self.config
        vectors = np.ascontiguousarray(snap.matrix, dtype=np.float32)
        n = vectors.shape[0]
        lists = max(1, min(round(cfg.lists_per_sqrt_offer * math.sqrt(n)), n // 39))
        index = faiss.IndexIVFScalarQuantizer(
            faiss.IndexFlatIP(snap.dim),
            snap.dim,
            lists,
            faiss.ScalarQuantizer.QT_8bit,
            faiss.METRIC_INNER_PRODUCT,
        )
        index.cp.seed = cfg.seed
        index.cp.max_points_per_centroid = cfg.train_per_list
        # the lists' k-means sees train_per_list offers per list, sampled here: given all N,
        # the index's training held ~15 MB more at its peak (100,000 offers)
        sample = min(n, lists * cfg.train_per_list)
        rows = np.sort(np.random.default_rng(cfg.seed).choice(n, sample, replace=False))
        index.train(np.ascontiguousarray(vectors[rows]))
        index.add(vectors)
        index.nprobe = cfg.probes
        self._index, self._matrix = index, snap.matrix
        self.stats.builds += 1
        return index


class _Ranker:
    """One call's user-independent arrays, and the exact rescoring of candidates.

    The arithmetic is :func:`~app.core.scoring.score_batch`'s: the same static parts
    (:func:`~app.core.scoring.static_parts`) and rows (:func:`~app.core.scoring.scored_offers`).
    """

    def __init__(
        self,
        snap: CatalogueSnapshot,
        cfg: ScoringConfig,
        now_ms: int,
        explore: F64,
        n_static: int,
    ) -> None:
        self.snap, self.cfg = snap, cfg
        self.eligible = snap.eligible_at(now_ms)
        self.parts = static_parts(snap, cfg, now_ms, explore)
        self.static: F64 = self.parts.total
        self.static32 = self.static.astype(np.float32)
        n_eligible = int(self.eligible.sum())
        take = min(n_static, n_eligible)
        if take == 0:
            best = np.empty(0, dtype=np.intp)
        elif take < snap.size:
            best = np.argpartition(-self.static, take - 1)[:take]
        else:
            best = np.arange(snap.size)
        self.static_rows: npt.NDArray[np.intp] = np.sort(best[np.isfinite(self.static[best])])
        self.in_static = np.zeros(snap.size, dtype=np.bool_)
        self.in_static[self.static_rows] = True
        self.static_vecs_t: F32 = np.ascontiguousarray(snap.matrix[self.static_rows].T)
        self.static32_rows = self.static32[self.static_rows]
        self.n_eligible = n_eligible

    def rank(
        self,
        unit_users: F32,
        sims: F32,
        found: I64,
        exclude: Sequence[Collection[str]] | None,
        reasons: bool,
    ) -> list[Sequence[ScoredOffer]]:
        """Top-K of each user's candidates, best first.

        ``found``: U x M offer rows nearest to each user (-1: none), ``sims``: the users' inner
        products with them. Columns of the score matrix: those M, then the static rows.
        """
        snap, cfg = self.snap, self.cfg
        n_users, m = found.shape
        w = np.float32(cfg.w_affinity)
        rows_ann = np.maximum(found, 0)
        scores = np.empty((n_users, m + self.static_rows.size), dtype=np.float32)
        ann = scores[:, :m]
        np.multiply(sims, w, out=ann)
        ann += self.static32[rows_ann]
        ann[(found < 0) | self.in_static[rows_ann]] = -np.inf  # none, or a static column
        static = scores[:, m:]
        np.matmul(unit_users, self.static_vecs_t, out=static)
        static *= w
        static += self.static32_rows
        if exclude is not None:
            for u, purchased in enumerate(exclude):
                if purchased:
                    bought = snap.offers_with_items(purchased)
                    ann[u, np.isin(rows_ann[u], bought)] = -np.inf
                    static[u, np.isin(self.static_rows, bought)] = -np.inf

        # the index's 8-bit similarities choose a shortlist; its candidate columns are then
        # rescored from the snapshot's float32 matrix, so the top-K and its order are those
        # of exact scores
        k = min(cfg.k, scores.shape[1])
        pre = min(SHORTLIST_PER_K * k, scores.shape[1])
        short = np.argpartition(-scores, pre - 1, axis=1)[:, :pre]
        short_scores = np.take_along_axis(scores, short, axis=1)
        from_ann = short < m
        short_rows = np.where(
            from_ann,
            np.take_along_axis(rows_ann, np.minimum(short, m - 1), axis=1),
            self.static_rows[np.maximum(short - m, 0)],
        )
        users_at, cols_at = np.nonzero(from_ann & np.isfinite(short_scores))
        rows_at = short_rows[users_at, cols_at]
        exact = np.einsum("id,id->i", unit_users[users_at], snap.matrix[rows_at])
        short_scores[users_at, cols_at] = exact * w + self.static32[rows_at]
        top = np.argpartition(-short_scores, k - 1, axis=1)[:, :k]
        top_scores = np.take_along_axis(short_scores, top, axis=1)
        top_rows = np.take_along_axis(short_rows, top, axis=1)
        order = np.lexsort((top_rows, -top_scores), axis=1)
        ranked = np.take_along_axis(top_rows, order, axis=1)
        kept = np.isfinite(np.take_along_axis(top_scores, order, axis=1))
        return scored_offers(unit_users, ranked, kept, snap, cfg, self.parts, reasons=reasons)

    def short_users(
        self, results: Sequence[Sequence[ScoredOffer]], exclude: Sequence[Collection[str]] | None
    ) -> list[int]:
        """Users with fewer offers than exact scoring returns: min(K, eligible - excluded)."""
        short: list[int] = []
        for u, row in enumerate(results):
            if len(row) >= self.cfg.k:
                continue
            available = self.n_eligible
            if exclude is not None and exclude[u]:
                available -= int(self.eligible[self.snap.offers_with_items(exclude[u])].sum())
            if len(row) < min(self.cfg.k, available):
                short.append(u)
        return short
