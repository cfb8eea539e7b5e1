"""Implicit-feedback factorisation: planted structure, determinism, edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.enums import EventType
from app.learning.factorisation import FactorisationConfig, factorise, learn_item_vectors
from app.learning.interactions import InteractionLog
from tests.support.planted import T0, group_log

pytestmark = pytest.mark.unit


def _cosines(vectors: dict[str, np.ndarray], group: dict[str, int]) -> tuple[float, float]:
    ids = sorted(vectors)
    v = np.stack([vectors[i] for i in ids])
    g = np.array([group[i] for i in ids])
    cos = v @ v.T
    same = g[:, None] == g[None, :]
    return float(cos[same].min()), float(cos[~same].max())


def test_learned_vectors_recover_planted_groups() -> None:
    planted = group_log(n_groups=3)
    vectors = learn_item_vectors(planted.log, dim=3, seed=0)
    assert len(vectors) == len(planted.items)
    same_min, cross_max = _cosines(vectors, planted.group)
    assert same_min > 0.9
    assert cross_max < 0.3


def test_with_more_dimensions_than_groups_nearest_neighbours_share_the_group() -> None:
    planted = group_log(n_groups=3)
    vectors = learn_item_vectors(planted.log, dim=8, seed=0)
    ids = sorted(vectors)
    v = np.stack([vectors[i] for i in ids])
    cos = v @ v.T
    np.fill_diagonal(cos, -np.inf)
    nearest = np.argmax(cos, axis=1)
    assert all(planted.group[ids[n]] == planted.group[i] for i, n in zip(ids, nearest, strict=True))
    _, cross_max = _cosines(vectors, planted.group)
    assert cross_max < 0.3


def test_vectors_are_unit_float32_of_the_requested_dimension() -> None:
    vectors = learn_item_vectors(group_log().log, dim=5, seed=1)
    for vec in vectors.values():
        assert vec.dtype == np.float32
        assert vec.shape == (5,)
        assert np.linalg.norm(vec) == pytest.approx(1.0, abs=1e-5)


def test_same_seed_same_vectors_bit_for_bit() -> None:
    log = group_log(seed=3).log
    a = factorise(log, dim=6, seed=7)
    b = factorise(log, dim=6, seed=7)
    assert np.array_equal(a.item_vectors, b.item_vectors)
    assert np.array_equal(a.user_factors, b.user_factors)


def test_user_factors_reconstruct_the_planted_preferences() -> None:
    planted = group_log(n_groups=3)
    fact = factorise(planted.log, dim=3, seed=0)
    scores = fact.user_factors @ fact.item_factors.T
    user_group = np.array([int(u[1]) for u in fact.user_ids])
    item_group = np.array([planted.group[i] for i in fact.item_ids])
    best = item_group[np.argmax(scores, axis=1)]
    assert np.array_equal(best, user_group)


def test_items_without_positive_confidence_get_no_vector() -> None:
    log = InteractionLog.from_columns(
        users=["a", "a", "b", "b", "c", "c", "a"],
        items=["x", "y", "x", "y", "y", "z", "bad"],
        ts_ms=[T0 + k for k in range(7)],
        types=[EventType.LIKE] * 6 + [EventType.DISLIKE],
    )
    vectors = learn_item_vectors(log, dim=2, seed=0)
    assert "bad" not in vectors
    assert {"x", "y", "z"} >= set(vectors)


def test_confidence_floor_makes_every_interaction_count() -> None:
    log = InteractionLog.from_columns(
        users=["a", "a", "b", "b", "c"],
        items=["x", "y", "x", "z", "y"],
        ts_ms=[T0 + k for k in range(5)],
        types=[EventType.RATING] * 5,
        ratings=[2.0, 5.0, 1.0, 5.0, 4.0],
    )
    assert "x" not in learn_item_vectors(log, dim=2, seed=0)
    floored = learn_item_vectors(log, dim=2, seed=0, cfg=FactorisationConfig(confidence_floor=1))
    assert "x" in floored


def test_a_matrix_smaller_than_the_dimension_is_padded_with_zeros() -> None:
    log = InteractionLog.from_columns(
        users=["a", "b", "b"], items=["x", "x", "y"], ts_ms=[T0, T0 + 1, T0 + 2],
        types=[EventType.PURCHASE] * 3,
    )  # fmt: skip
    fact = factorise(log, dim=16, seed=0)
    assert fact.item_vectors.shape == (2, 16)
    assert np.all(fact.singular_values[1:] == 0)


def test_an_empty_log_learns_nothing() -> None:
    log = InteractionLog.from_columns([], [], [], [])
    assert learn_item_vectors(log, dim=4) == {}
