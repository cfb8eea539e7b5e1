"""Learning the neighbour index from sequences."""

from __future__ import annotations

import pytest

from app.core.enums import EventType
from app.learning.cooccurrence import CooccurrenceConfig, learn_cooccurrence
from app.learning.interactions import InteractionLog
from tests.support.planted import T0, chain_log

pytestmark = pytest.mark.unit


def _log(sequences: dict[str, list[str]]) -> InteractionLog:
    users, items, ts = [], [], []
    t = T0
    for user, seq in sequences.items():
        for item in seq:
            users.append(user)
            items.append(item)
            ts.append(t)
            t += 1
    return InteractionLog.from_columns(users, items, ts, [EventType.VIEW] * len(users))


def test_pairs_within_the_window_with_distance_decay() -> None:
    log = _log({"u": ["a", "b", "c", "d"]})
    cfg = CooccurrenceConfig(window=2, distance_decay=0.5, popularity_exponent=0.0)
    index = learn_cooccurrence(log, cfg)
    assert dict(index.neighbours_of("a")) == {"b": 1.0, "c": 0.5}
    assert dict(index.neighbours_of("c")) == {"b": 1.0, "d": 1.0, "a": 0.5}


def test_directed_pairs_only_point_forward() -> None:
    log = _log({"u": ["a", "b"]})
    index = learn_cooccurrence(log, CooccurrenceConfig(symmetric=False, popularity_exponent=0))
    assert index.neighbours_of("a") == [("b", 1.0)]
    assert index.neighbours_of("b") == []


def test_users_do_not_pair_across_and_repeats_collapse() -> None:
    log = _log({"u": ["a", "a", "a", "b"], "v": ["c"]})
    index = learn_cooccurrence(log, CooccurrenceConfig(window=1, popularity_exponent=0.0))
    assert index.neighbours_of("a") == [("b", 1.0)]
    assert index.neighbours_of("c") == []


def test_popularity_damping_and_the_neighbour_cap() -> None:
    log = _log({f"u{k}": ["hit", f"x{k}"] for k in range(5)} | {"w": ["y", "z"]})
    index = learn_cooccurrence(log, CooccurrenceConfig(window=1, popularity_exponent=0.5))
    # "y" and "z" co-occur once, each seen once: 1 / sqrt(2 * 2) beats x_k's 1 / sqrt(6 * 2)
    assert dict(index.neighbours_of("y"))["z"] == pytest.approx(0.5)
    assert dict(index.neighbours_of("x0"))["hit"] == pytest.approx(1 / (12**0.5))
    capped = learn_cooccurrence(log, CooccurrenceConfig(window=1, max_neighbours=2))
    assert len(capped.neighbours_of("hit")) == 2


def test_chains_make_the_next_step_a_top_neighbour() -> None:
    planted = chain_log()
    index = learn_cooccurrence(planted.log, CooccurrenceConfig(window=1))
    top = {n for n, _ in index.neighbours_of("c0-s04")[:2]}
    assert top == {"c0-s03", "c0-s05"}
