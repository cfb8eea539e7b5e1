"""Ranking metrics of one method over the replayed queries.

Each query has one relevant item (the positive interaction); ``rank`` is the 0-based position
of the best-placed offer containing it in the method's list (``rank >= k_max``: not in the
top ``k_max``). For K = 1..k_max:

* ``HitRate@K`` = share of queries with ``rank < K``;
* ``NDCG@K`` = mean of ``1 / log2(rank + 2)`` over queries with ``rank < K`` (0 otherwise;
  with one relevant item the ideal DCG is 1);
* ``coverage@K`` = share of the catalogue's offers that appeared in at least one top-K list;
* ``users_with_hit@K`` = share of the queried users with at least one query hit at K.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Ints = npt.NDArray[np.int64]


@dataclass(frozen=True)
class MethodResult:
    """Metrics of one method keyed by K (1..k_max); see module docs.

    ``hit_rate_cold``: HitRate@K over the queries whose item had no interaction before the
    split (cold items). ``hit_rate_returning``: HitRate@K over the queries of users who had
    interactions before the split (the others are new users). ``seconds``: wall time spent
    in the method (scoring and state).
    """

    hit_rate: dict[int, float]
    ndcg: dict[int, float]
    coverage: dict[int, float]
    users_with_hit: dict[int, float]
    hit_rate_cold: dict[int, float]
    hit_rate_returning: dict[int, float]
    seconds: float


class RankingMetrics:
    """Accumulates ranks and top-K lists of one method (see module docs)."""

    def __init__(self, k_max: int, n_offers: int) -> None:
        self.k_max = k_max
        self._ranks: dict[int, int] = {}
        self._users: dict[int, int] = {}
        self._cold: dict[int, bool] = {}
        self._returning: dict[int, bool] = {}
        self._best_rank = np.full(n_offers, k_max, dtype=np.int64)

    def record(
        self,
        query_id: int,
        user: int,
        cold: bool,
        rank: int,
        top: npt.ArrayLike,
        returning: bool = False,
    ) -> None:
        """One query: its target's 0-based ``rank`` (any value >= ``k_max`` = miss) and the
        offer rows of the method's top list, best first (at most ``k_max`` are used).
        ``cold``: the item is cold; ``returning``: the user was known before the split."""
        self._ranks[query_id] = min(rank, self.k_max)
        self._users[query_id] = user
        self._cold[query_id] = cold
        self._returning[query_id] = returning
        rows = np.asarray(top, dtype=np.int64)[: self.k_max]
        np.minimum.at(self._best_rank, rows, np.arange(len(rows), dtype=np.int64))

    @property
    def n_queries(self) -> int:
        """Queries recorded."""
        return len(self._ranks)

    def per_query(self) -> tuple[Ints, Ints, Ints]:
        """``(query ids, users, ranks)`` of every recorded query, by query id."""
        ids = sorted(self._ranks)
        return (
            np.array(ids, dtype=np.int64),
            np.array([self._users[q] for q in ids], dtype=np.int64),
            np.array([self._ranks[q] for q in ids], dtype=np.int64),
        )

    def result(self, seconds: float = 0.0) -> MethodResult:
        """The metrics for K = 1..k_max."""
        ids = sorted(self._ranks)
        ranks = np.array([self._ranks[q] for q in ids], dtype=np.int64)
        users = np.array([self._users[q] for q in ids], dtype=np.int64)
        cold = np.array([self._cold[q] for q in ids], dtype=np.bool_)
        back = np.array([self._returning[q] for q in ids], dtype=np.bool_)
        gain = np.where(ranks < self.k_max, 1.0 / np.log2(ranks + 2.0), 0.0)
        user_best: dict[int, int] = {}
        for u, r in zip(users.tolist(), ranks.tolist(), strict=True):
            user_best[u] = min(r, user_best.get(u, self.k_max))
        best = np.array(list(user_best.values()), dtype=np.int64)
        ks = range(1, self.k_max + 1)
        n = max(len(ranks), 1)
        n_cold, n_back = int(cold.sum()), int(back.sum())
        return MethodResult(
            hit_rate={k: float((ranks < k).sum() / n) for k in ks},
            ndcg={k: float(gain[ranks < k].sum() / n) for k in ks},
            coverage={
                k: float((self._best_rank < k).mean()) if self._best_rank.size else 0.0 for k in ks
            },
            users_with_hit={k: float((best < k).mean()) if best.size else 0.0 for k in ks},
            hit_rate_cold={
                k: float((ranks[cold] < k).sum() / n_cold) if n_cold else 0.0 for k in ks
            },
            hit_rate_returning={
                k: float((ranks[back] < k).sum() / n_back) if n_back else 0.0 for k in ks
            },
            seconds=seconds,
        )


def ranks_from_scores(
    scores: npt.NDArray[np.floating[Any]], targets: list[npt.NDArray[np.intp]]
) -> Ints:
    """0-based rank of each row's best target column in a B x N score matrix.

    Order: score descending, ties by column ascending (as :func:`app.core.scoring.score_batch`
    breaks them). A row whose targets are all ``-inf`` (excluded or ineligible) or that has no
    target gets ``N`` (never a hit).
    """
    n_rows, n_cols = scores.shape
    best_col = np.full(n_rows, -1, dtype=np.int64)
    best_score = np.full(n_rows, -np.inf)
    for b, cols in enumerate(targets):
        if len(cols) == 0:
            continue
        ordered = np.sort(np.asarray(cols, dtype=np.int64))
        vals = scores[b, ordered]
        k = int(np.argmax(vals))  # the first maximum: the lowest column among ties
        best_col[b], best_score[b] = ordered[k], vals[k]
    ahead = (scores > best_score[:, None]).sum(axis=1)
    ties = ((scores == best_score[:, None]) & (np.arange(n_cols) < best_col[:, None])).sum(axis=1)
    ranks = (ahead + ties).astype(np.int64)
    return np.asarray(np.where(np.isfinite(best_score), ranks, n_cols), dtype=np.int64)
