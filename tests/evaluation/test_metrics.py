"""Ranks from score matrices and the accumulated metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.evaluation.metrics import RankingMetrics, ranks_from_scores
from app.evaluation.split import temporal_split

pytestmark = pytest.mark.unit


def test_ranks_follow_score_then_column_order() -> None:
    scores = np.array(
        [
            [0.5, 0.9, 0.5, 0.1],
            [0.5, 0.9, 0.5, 0.1],
            [0.5, -np.inf, 0.2, 0.1],
            [0.3, 0.2, 0.1, 0.0],
        ]
    )
    targets = [
        np.array([2]),
        np.array([0]),
        np.array([1]),
        np.array([3, 1]),
    ]  # best target of the last row is column 1
    ranks = ranks_from_scores(scores, targets)
    assert ranks.tolist() == [2, 1, 4, 1]


def test_hit_rate_ndcg_coverage_and_users() -> None:
    m = RankingMetrics(k_max=3, n_offers=5)
    m.record(0, user=7, cold=False, rank=0, top=[4, 1, 2], returning=True)
    m.record(1, user=7, cold=True, rank=2, top=[4, 0, 3])
    m.record(2, user=8, cold=False, rank=9, top=[4, 1])
    r = m.result(seconds=1.5)
    assert r.hit_rate == {1: pytest.approx(1 / 3), 2: pytest.approx(1 / 3), 3: pytest.approx(2 / 3)}
    assert r.ndcg[3] == pytest.approx((1.0 + 1 / math.log2(4)) / 3)
    assert r.coverage == {1: 0.2, 2: 0.6, 3: 1.0}
    assert r.users_with_hit == {1: 0.5, 2: 0.5, 3: 0.5}
    assert r.hit_rate_cold == {1: 0.0, 2: 0.0, 3: 1.0}
    assert r.hit_rate_returning == {1: 1.0, 2: 1.0, 3: 1.0}
    assert r.seconds == 1.5


def test_temporal_split_is_the_rounded_up_quantile() -> None:
    ts = np.arange(10) * 1000
    assert temporal_split(ts, 0.8) == 7200
    with pytest.raises(ValueError):
        temporal_split([], 0.8)
    with pytest.raises(ValueError):
        temporal_split(ts, 1.0)
