"""How sure a difference in HitRate@K between two methods is: a bootstrap over users.

Both methods answered the same queries. Users, not queries, are resampled (with replacement),
because one user's queries are not independent of each other. For each resample the
difference is ``sum over drawn users (hits_a - hits_b) / sum over drawn users queries``; the
interval is the 2.5th to 97.5th percentile of ``n_resamples`` such differences. "Ahead" means
the whole interval is above 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Ints = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Difference:
    """``a`` minus ``b`` in HitRate@``k``: the difference, its 95 % interval, the ratio."""

    k: int
    difference: float
    low: float
    high: float
    ratio: float

    @property
    def resolved(self) -> bool:
        """The interval excludes 0."""
        return self.low > 0 or self.high < 0


def hit_rate_difference(
    users: Ints, ranks_a: Ints, ranks_b: Ints, k: int, n_resamples: int = 2_000, seed: int = 0
) -> Difference:
    """The bootstrap interval of HitRate@``k`` of a minus b over the same queries (module
    doc); ``users``: the user of each query."""
    if not (len(users) == len(ranks_a) == len(ranks_b)) or len(users) == 0:
        raise ValueError("need the same non-empty queries for both methods")
    codes, per_query_user = np.unique(users, return_inverse=True)
    n_users = len(codes)
    queries = np.bincount(per_query_user, minlength=n_users).astype(np.float64)
    hits_a = np.bincount(per_query_user, weights=(ranks_a < k), minlength=n_users)
    hits_b = np.bincount(per_query_user, weights=(ranks_b < k), minlength=n_users)
    delta = hits_a - hits_b
    rng = np.random.default_rng(seed)
    samples = np.empty(n_resamples)
    chunk = max(1, 2_000_000 // n_users)  # resamples per draw: bounded memory
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        draws = rng.multinomial(n_users, np.full(n_users, 1.0 / n_users), size=size)
        samples[start : start + size] = (draws @ delta) / (draws @ queries)
    low, high = np.percentile(samples, [2.5, 97.5])
    rate_a, rate_b = hits_a.sum() / queries.sum(), hits_b.sum() / queries.sum()
    return Difference(
        k=k,
        difference=float(rate_a - rate_b),
        low=float(low),
        high=float(high),
        ratio=float(rate_a / rate_b) if rate_b > 0 else float("inf"),
    )
