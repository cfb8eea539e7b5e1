"""The hybrid score: the engine's parts (identical to score_batch) plus co-occurrence."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.catalog import Catalogue
from app.core.catalog_records import Item, Offer
from app.core.cooccurrence import CooccurrenceIndex, RecentItemsConfig
from app.core.hybrid_scoring import (
    COOCCURRENCE_PART,
    HybridConfig,
    hybrid_score_batch,
    score_matrix,
    top_k,
)
from app.core.scoring import ScoringConfig, score_batch

pytestmark = pytest.mark.unit

DIM = 8
NOW = 1_700_000_000_000


def _catalogue(n: int = 40, seed: int = 0) -> Catalogue:
    rng = np.random.default_rng(seed)
    catalogue = Catalogue(dim=DIM)
    for i in range(n):
        catalogue.upsert_item(
            Item(item_id=f"i{i}", title=f"Item {i}", tags=(f"t{i % 7}", f"k{i % 3}"))
        )
        catalogue.upsert_offer(
            Offer(
                offer_id=f"o{i:02d}",
                title=f"Offer {i}",
                item_ids=(f"i{i}",),
                value=float(rng.integers(0, 3)),
                priority=int(rng.integers(-1, 2)),
                channels=("web",) if i % 9 else (),
                valid_until=NOW - 1 if i % 11 == 5 else None,
            )
        )
        catalogue.set_popularity(f"o{i:02d}", float(rng.random()))
    return catalogue


def test_score_matrix_ranks_exactly_like_score_batch() -> None:
    catalogue = _catalogue()
    rng = np.random.default_rng(1)
    users = rng.standard_normal((6, DIM)).astype(np.float32)
    users[2] = 0.0
    exclude = [{"i1", "i2"}, set(), {"i3"}, set(), {"i0", "i4"}, set()]
    cfg = ScoringConfig(k=12)
    expected = score_batch(users, NOW, catalogue, cfg, exclude, reasons=False)
    snap = catalogue.snapshot()
    scores = score_matrix(users, NOW, snap, cfg, exclude)
    for u, rows in enumerate(top_k(scores, cfg.k)):
        got = [snap.offer_ids[i] for i in rows if np.isfinite(scores[u, i])]
        assert got == [s.offer_id for s in expected[u]]
        for s in expected[u]:
            assert scores[u, snap.offer_index[s.offer_id]] == pytest.approx(s.score, abs=1e-6)


def test_top_k_breaks_ties_by_row() -> None:
    scores = np.array([[1.0, 3.0, 3.0, 2.0, 3.0]])
    assert top_k(scores, 4).tolist() == [[1, 2, 4, 3]]


def test_hybrid_adds_cooccurrence_and_explains_it() -> None:
    catalogue = _catalogue()
    index = CooccurrenceIndex.from_neighbours({"i1": [("i7", 1.0)]})
    cfg = HybridConfig(
        scoring=ScoringConfig(w_affinity=0.0, w_value=0.0, w_popularity=0.0, w_priority=0.0),
        w_cooccurrence=1.0,
        recent=RecentItemsConfig(n_recent=5),
    )
    users = np.zeros((2, DIM), dtype=np.float32)
    ranked = hybrid_score_batch(users, [["i1"], []], NOW, catalogue, index, cfg)
    top = ranked[0][0]
    assert top.offer_id == "o07"
    assert top.parts[COOCCURRENCE_PART] == pytest.approx(1.0)
    assert top.score == pytest.approx(sum(top.parts.values()))
    assert top.reason == "Because you chose Item 1"
    assert all(s.parts[COOCCURRENCE_PART] == 0 for s in ranked[1])


def test_hybrid_without_cooccurrence_weight_equals_score_batch() -> None:
    catalogue = _catalogue()
    index = CooccurrenceIndex.from_neighbours({"i1": [("i7", 1.0)]})
    scoring = ScoringConfig(k=10)
    cfg = HybridConfig(scoring=scoring, w_cooccurrence=0.0)
    users = np.random.default_rng(2).standard_normal((3, DIM)).astype(np.float32)
    hybrid = hybrid_score_batch(users, [["i1"]] * 3, NOW, catalogue, index, cfg, [{"i2"}] * 3)
    plain = score_batch(users, NOW, catalogue, scoring, [{"i2"}] * 3)
    assert [[s.offer_id for s in row] for row in hybrid] == [
        [s.offer_id for s in row] for row in plain
    ]
    assert [[s.reason for s in row] for row in hybrid] == [[s.reason for s in row] for row in plain]


def test_shapes_are_checked() -> None:
    catalogue = _catalogue()
    index = CooccurrenceIndex.from_neighbours({})
    with pytest.raises(ValueError):
        hybrid_score_batch(np.zeros((2, DIM)), [[]], NOW, catalogue, index, HybridConfig())
    with pytest.raises(ValueError):
        score_matrix(np.zeros((1, DIM + 1)), NOW, catalogue.snapshot(), ScoringConfig())
