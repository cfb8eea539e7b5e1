"""The bootstrap interval of a HitRate difference, resampling users."""

from __future__ import annotations

import numpy as np
import pytest

from app.evaluation.bootstrap import hit_rate_difference

pytestmark = pytest.mark.unit


def test_a_method_better_for_every_user_is_resolved_ahead() -> None:
    users = np.repeat(np.arange(50), 4)
    a = np.zeros(200, dtype=np.int64)  # always a hit
    b = np.where(np.arange(200) % 2 == 0, 0, 50).astype(np.int64)  # half the time
    d = hit_rate_difference(users, a, b, k=10)
    assert d.difference == pytest.approx(0.5) and d.ratio == pytest.approx(2.0)
    assert 0 < d.low <= 0.5 <= d.high and d.resolved


def test_equal_methods_are_not_resolved() -> None:
    rng = np.random.default_rng(1)
    users = rng.integers(0, 100, 1_000)
    ranks = rng.integers(0, 30, 1_000)
    d = hit_rate_difference(users, ranks, rng.permutation(ranks), k=10)
    assert d.low < 0 < d.high and not d.resolved


def test_the_same_seed_gives_the_same_interval_and_bad_input_is_refused() -> None:
    users = np.array([0, 0, 1, 2])
    a, b = np.array([0, 20, 0, 0]), np.array([20, 20, 0, 20])
    assert hit_rate_difference(users, a, b, 10) == hit_rate_difference(users, a, b, 10)
    with pytest.raises(ValueError):
        hit_rate_difference(users, a, b[:3], 10)
