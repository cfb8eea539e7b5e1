"""The hybrid score: the engine's parts (identical to score_batch) plus co-occurrence."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.catalog import Catalogue
from app.core.catalog_records import Item, Offer
from app.core.cooccurrence.hybrid import (
    COOCCURRENCE_PART,
    HybridConfig,
    hybrid_score_batch,
    top_k,
)
from app.core.cooccurrence.index import CooccurrenceIndex, RecentItemsConfig, cooccurrence_scores
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


def test_hybrid_ranks_by_the_engine_score_plus_the_weighted_dense_cooccurrence_part() -> None:
    catalogue = _catalogue()
    rng = np.random.default_rng(1)
    table = {
        f"i{i}": [(f"i{j}", float(rng.random())) for j in rng.choice(40, 6, replace=False)]
        for i in range(40)
    }
    index = CooccurrenceIndex.from_neighbours(table)
    users = rng.standard_normal((6, DIM)).astype(np.float32)
    users[2] = 0.0
    recent = [["i1", "i5"], [], ["i3"], ["i7", "i8", "i9"], ["unknown", "i2"], ["i0"]]
    exclude = [{"i1", "i2"}, set(), {"i3"}, set(), {"i0", "i4"}, set()]
    cfg = HybridConfig(scoring=ScoringConfig(k=12), w_cooccurrence=0.4)
    ranked = hybrid_score_batch(users, recent, NOW, catalogue, index, cfg, exclude)

    snap = catalogue.snapshot()
    dense = cooccurrence_scores(index, recent, snap, cfg.recent)
    everything = score_batch(users, NOW, catalogue, ScoringConfig(k=1000), exclude)
    for u, row in enumerate(ranked):
        expected = {
            s.offer_id: s.score + 0.4 * dense[u, snap.offer_index[s.offer_id]]
            for s in everything[u]
        }
        best = sorted(expected.items(), key=lambda kv: (-kv[1], kv[0]))[:12]
        assert [s.offer_id for s in row] == [o for o, _ in best]
        for scored in row:
            assert scored.score == pytest.approx(expected[scored.offer_id], abs=1e-6)
            cooc = 0.4 * dense[u, snap.offer_index[scored.offer_id]]
            assert scored.parts[COOCCURRENCE_PART] == pytest.approx(cooc, abs=1e-12)


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
        hybrid_score_batch(np.zeros((1, DIM + 1)), [[]], NOW, catalogue, index, HybridConfig())
