from __future__ import annotations

import math

import numpy as np
import pytest

from app.bench.ann_recall import (
    NOW_MS,
    SyntheticCatalogue,
    SyntheticSpec,
    purchases,
    recall_at,
    synthetic_catalogue,
    synthetic_users,
)
from app.core.ann import AnnConfig, CandidateIndex
from app.core.catalog import Catalogue
from app.core.catalog_records import Offer
from app.core.ranked import ScoredOffer
from app.core.scoring import PARTS, ScoringConfig, score_batch

pytestmark = pytest.mark.unit

CFG = ScoringConfig(k=20)  # the worker ranks k x candidate_factor = 20 offers per user


@pytest.fixture(scope="module")
def shop() -> SyntheticCatalogue:
    """20,000 offers: clustered vectors, 5% identical promotion rows, 10% ineligible."""
    return synthetic_catalogue(SyntheticSpec(offers=20_000, seed=11))


@pytest.fixture(scope="module")
def users(shop: SyntheticCatalogue) -> np.ndarray:
    return synthetic_users(shop, 500, seed=5)


def test_recall_at_10_against_exact_scoring_is_at_least_095(
    shop: SyntheticCatalogue, users: np.ndarray
) -> None:
    unexcluded = score_batch(users, NOW_MS, shop.catalogue, CFG, reasons=False)
    exclude = purchases(unexcluded, seed=3)
    exact = score_batch(users, NOW_MS, shop.catalogue, CFG, exclude, reasons=False)
    index = CandidateIndex()  # default min_offers (20,000) -> this catalogue uses the index
    approx = index.score_batch(users, NOW_MS, shop.catalogue, CFG, exclude, reasons=False)
    assert index.stats.approximate_users == len(users)
    assert recall_at(exact, approx, 10) >= 0.95


def test_ineligible_and_purchased_offers_are_never_returned(
    shop: SyntheticCatalogue, users: np.ndarray
) -> None:
    index = CandidateIndex(AnnConfig(min_offers=0))
    first = index.score_batch(users, NOW_MS, shop.catalogue, CFG, reasons=False)
    # each user bought the items of their three best offers: those must now disappear
    exclude = [{i for s in row[:3] for i in s.offer.item_ids} for row in first]
    again = index.score_batch(users, NOW_MS, shop.catalogue, CFG, exclude, reasons=False)
    snap = shop.catalogue.snapshot()
    eligible = snap.eligible_at(NOW_MS)
    ineligible_ids = {o for o, ok in zip(snap.offer_ids, eligible, strict=True) if not ok}
    assert ineligible_ids  # the catalogue has some: the check below is not vacuous
    for row, bought in zip(again, exclude, strict=True):
        assert len(row) == CFG.k
        for scored in row:
            assert scored.offer_id not in ineligible_ids
            assert not bought & set(scored.offer.item_ids)


def test_scores_and_parts_are_those_of_exact_scoring(
    shop: SyntheticCatalogue, users: np.ndarray
) -> None:
    some = users[:40]
    exact = score_batch(some, NOW_MS, shop.catalogue, CFG)
    approx = CandidateIndex(AnnConfig(min_offers=0)).score_batch(some, NOW_MS, shop.catalogue, CFG)
    shared = 0
    for want, got in zip(exact, approx, strict=True):
        assert [s.score for s in got] == sorted((s.score for s in got), reverse=True)
        by_id = {s.offer_id: s for s in want}
        for scored in got:
            assert tuple(scored.parts) == PARTS
            assert math.fsum(scored.parts.values()) == pytest.approx(scored.score, abs=1e-12)
            assert scored.reason
            if scored.offer_id in by_id:
                shared += 1
                ref = by_id[scored.offer_id]
                assert scored.score == pytest.approx(ref.score, abs=1e-12)
                assert dict(scored.parts) == pytest.approx(dict(ref.parts), abs=1e-12)
                assert scored.reason == ref.reason
    assert shared > 0.9 * 40 * CFG.k


def test_without_reasons_every_reason_is_empty(shop: SyntheticCatalogue, users: np.ndarray) -> None:
    rows = CandidateIndex(AnnConfig(min_offers=0)).score_batch(
        users[:5], NOW_MS, shop.catalogue, CFG, reasons=False
    )
    assert all(s.reason == "" for row in rows for s in row)


def offer(offer_id: str, vector: np.ndarray | None = None, value: float = 0.0) -> Offer:
    return Offer(
        offer_id=offer_id,
        title=offer_id,
        item_ids=(offer_id,),
        vector=None if vector is None else tuple(vector.tolist()),
        value=value,
        channels=("email",),
    )


def random_catalogue(n: int, dim: int = 16, seed: int = 0) -> Catalogue:
    rng = np.random.default_rng(seed)
    cat = Catalogue(dim=dim)
    for i in range(n):
        cat.upsert_offer(offer(f"o{i:05d}", rng.normal(size=dim), float(rng.uniform(1, 10))))
    return cat


def test_index_is_rebuilt_when_the_offer_vectors_change_not_when_popularity_does() -> None:
    cat = random_catalogue(3_000)
    index = CandidateIndex(AnnConfig(min_offers=0, static_candidates=50))
    user = np.random.default_rng(9).normal(size=(1, 16)).astype(np.float32)
    index.score_batch(user, 0, cat, CFG)
    index.score_batch(user, 0, cat, CFG)
    cat.set_popularity("o00001", 0.9)
    index.score_batch(user, 0, cat, CFG)
    assert index.stats.builds == 1
    # an offer of no value (outside the 50 static candidates) pointing exactly at the user:
    # only an index of the new matrix can find it
    cat.upsert_offer(offer("new", user[0], value=0.0))
    [row] = index.score_batch(user, 0, cat, CFG)
    assert index.stats.builds == 2
    assert "new" in [s.offer_id for s in row]


def test_prepare_builds_the_index_once_and_only_for_large_catalogues() -> None:
    cat = random_catalogue(2_000)
    assert not CandidateIndex(AnnConfig(min_offers=5_000)).prepare(cat)
    index = CandidateIndex(AnnConfig(min_offers=1_000))
    assert index.prepare(cat)
    assert not index.prepare(cat)
    assert index.stats.builds == 1


def test_catalogues_below_min_offers_are_scored_exactly() -> None:
    cat = random_catalogue(500)
    user_vecs = np.random.default_rng(2).normal(size=(7, 16)).astype(np.float32)
    exclude = [{"o00003"}, set(), set(), {"o00100", "o00200"}, set(), set(), set()]
    index = CandidateIndex(AnnConfig(min_offers=501))
    got = index.score_batch(user_vecs, 0, cat, CFG, exclude)
    assert got == score_batch(user_vecs, 0, cat, CFG, exclude)
    assert index.stats.exact_users == 7
    assert index.stats.builds == 0


def test_users_whose_candidates_run_short_are_ranked_exactly() -> None:
    # 30 eligible offers far from the user among 2,000 expired ones near it: the nearest
    # candidates are all expired, so only exact scoring finds the K eligible offers
    rng = np.random.default_rng(4)
    user = np.ones(16, dtype=np.float32)
    cat = Catalogue(dim=16)
    for i in range(2_000):
        near = user + 0.3 * rng.normal(size=16)
        cat.upsert_offer(offer(f"x{i:05d}", near).model_copy(update={"valid_until": 1}))
    for i in range(30):
        cat.upsert_offer(offer(f"e{i:02d}", -user + 0.3 * rng.normal(size=16)))
    index = CandidateIndex(AnnConfig(min_offers=0, candidates=40, static_candidates=5))
    [row] = index.score_batch(user[None, :], 10, cat, CFG)
    assert [s.offer_id for s in row] == [
        s.offer_id for s in score_batch(user[None, :], 10, cat, CFG)[0]
    ]
    assert len(row) == CFG.k
    assert index.stats.exact_users == 1


def test_exploration_part_lifts_offers_the_index_would_not_find() -> None:
    cat = random_catalogue(3_000)
    snap = cat.snapshot()
    explore = np.zeros(snap.size)
    lifted = snap.offer_index["o01234"]
    explore[lifted] = 1.0
    user_vecs = np.random.default_rng(6).normal(size=(4, 16)).astype(np.float32)
    index = CandidateIndex(AnnConfig(min_offers=0, static_candidates=20))
    rows = index.score_batch(user_vecs, 0, cat, CFG, exploration=explore)
    exact = score_batch(user_vecs, 0, cat, CFG, exploration=explore)
    assert index.stats.approximate_users == 4
    for row, want in zip(rows, exact, strict=True):
        assert row[0].offer_id == want[0].offer_id == "o01234"
        assert row[0].parts["exploration"] == 1.0
        assert row[0].score == pytest.approx(want[0].score, abs=1e-12)
    with pytest.raises(ValueError):
        index.score_batch(user_vecs, 0, cat, CFG, exploration=np.zeros(3))


def test_negative_affinity_weight_falls_back_to_exact_scoring() -> None:
    cat = random_catalogue(1_000)
    cfg = CFG.model_copy(update={"w_affinity": -0.5})
    user_vecs = np.random.default_rng(3).normal(size=(3, 16)).astype(np.float32)
    index = CandidateIndex(AnnConfig(min_offers=0))
    assert index.score_batch(user_vecs, 0, cat, cfg) == score_batch(user_vecs, 0, cat, cfg)
    assert index.stats.builds == 0


def test_mismatched_inputs_are_refused_like_exact_scoring() -> None:
    cat = random_catalogue(1_000)
    index = CandidateIndex(AnnConfig(min_offers=0))
    with pytest.raises(ValueError):
        index.score_batch(np.zeros((1, 17)), 0, cat, CFG)
    with pytest.raises(ValueError):
        index.score_batch(np.zeros(16), 0, cat, CFG)
    with pytest.raises(ValueError):
        index.score_batch(np.zeros((2, 16)), 0, cat, CFG, [set()])


def test_recall_at_counts_shared_offers_of_the_top_k() -> None:
    def row(*ids: str) -> list[ScoredOffer]:
        return [ScoredOffer(offer(i), 0.0, {}, "") for i in ids]

    assert recall_at([row("a", "b"), row()], [row("b", "c"), row("a")], k=2) == 0.75
