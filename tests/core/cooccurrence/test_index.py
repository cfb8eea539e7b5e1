"""The co-occurrence index and the recent-items score part."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.catalog import Catalogue
from app.core.catalog_records import Item, Offer
from app.core.cooccurrence.index import (
    CooccurrenceIndex,
    RecentItemsConfig,
    cooccurrence_scores,
    item_scores,
    offer_alignment,
    recent_rows,
    sparse_offer_scores,
    strongest_source,
)

pytestmark = pytest.mark.unit

TABLE = {
    "a": [("b", 2.0), ("c", 1.0)],
    "b": [("a", 2.0), ("d", 4.0)],
    "c": [("a", 1.0)],
}


def test_from_neighbours_sorts_best_first_and_caps_the_width() -> None:
    index = CooccurrenceIndex.from_neighbours(TABLE, max_neighbours=1)
    assert index.max_neighbours == 1
    assert index.neighbours_of("b") == [("d", 4.0)]
    assert index.neighbours_of("d") == []
    assert index.neighbours_of("unknown") == []
    assert set(index.item_ids) == {"a", "b", "c", "d"}


def test_records_round_trip() -> None:
    index = CooccurrenceIndex.from_neighbours(TABLE)
    again = CooccurrenceIndex.from_records(index.to_records())
    for item in index.item_ids:
        assert again.neighbours_of(item) == index.neighbours_of(item)


def test_scores_weight_recent_items_by_recency_and_normalise_to_one() -> None:
    index = CooccurrenceIndex.from_neighbours(TABLE)
    cfg = RecentItemsConfig(n_recent=2, recency_decay=0.5, exponent=1.0)
    rows = recent_rows(index, [["a", "b"], [], ["zzz"]], cfg)
    scores = item_scores(index, rows, cfg)
    col = index.index
    # user 0: a (weight 1) -> b 2, c 1; b (weight 0.5) -> a 1, d 2; max is 2
    assert scores[0, col["b"]] == pytest.approx(1.0)
    assert scores[0, col["d"]] == pytest.approx(1.0)
    assert scores[0, col["c"]] == pytest.approx(0.5)
    assert scores[0, col["a"]] == pytest.approx(0.5)
    assert np.all(scores[1] == 0) and np.all(scores[2] == 0)


def test_the_exponent_lifts_weaker_items_without_changing_their_order() -> None:
    index = CooccurrenceIndex.from_neighbours(TABLE)
    linear = RecentItemsConfig(n_recent=2, recency_decay=0.5, exponent=1.0)
    concave = RecentItemsConfig(n_recent=2, recency_decay=0.5, exponent=0.7)
    rows = recent_rows(index, [["a", "b"]], linear)
    before, after = item_scores(index, rows, linear)[0], item_scores(index, rows, concave)[0]
    col = index.index
    assert after[col["b"]] == 1.0  # the best item stays at 1
    assert after[col["c"]] == pytest.approx(0.5**0.7)  # half the best sum: 0.62
    assert np.all(after[before == 0] == 0)  # items no recent item points to stay at 0
    reached = before > 0
    assert np.all(after[reached] >= before[reached])
    assert np.array_equal(np.argsort(-before, kind="stable"), np.argsort(-after, kind="stable"))


def test_only_the_newest_n_recent_items_count() -> None:
    index = CooccurrenceIndex.from_neighbours(TABLE)
    cfg = RecentItemsConfig(n_recent=1, recency_decay=1.0)
    scores = item_scores(index, recent_rows(index, [["c", "b"]], cfg), cfg)
    assert scores[0, index.index["a"]] == 1.0
    assert scores[0, index.index["d"]] == 0.0


def test_offer_scores_take_the_best_item_of_each_offer() -> None:
    catalogue = Catalogue(dim=4)
    for item in "abcd":
        catalogue.upsert_item(Item(item_id=item))
    catalogue.upsert_offer(Offer(offer_id="o-b", title="b", item_ids=("b",), channels=("web",)))
    catalogue.upsert_offer(
        Offer(offer_id="o-cd", title="c+d", item_ids=("c", "d"), channels=("web",))
    )
    catalogue.upsert_offer(Offer(offer_id="o-none", title="x", channels=("web",)))
    index = CooccurrenceIndex.from_neighbours(TABLE)
    snap = catalogue.snapshot()
    cfg = RecentItemsConfig(n_recent=1)
    out = cooccurrence_scores(index, [["b"]], snap, cfg)
    assert out.shape == (1, 3)
    assert out[0, snap.offer_index["o-cd"]] == pytest.approx(1.0)  # d: 4 / 4
    assert out[0, snap.offer_index["o-b"]] == 0.0
    assert out[0, snap.offer_index["o-none"]] == 0.0


def test_strongest_source_names_the_recent_item_that_contributed_most() -> None:
    index = CooccurrenceIndex.from_neighbours(TABLE)
    cfg = RecentItemsConfig(recency_decay=0.9)
    assert strongest_source(index, ["c", "b"], "a", cfg) == "b"  # c: 1 * 1, b: 2 * 0.9
    tie = RecentItemsConfig(recency_decay=0.5)
    assert strongest_source(index, ["c", "b"], "a", tie) == "c"  # 1 * 1 = 2 * 0.5: newest wins
    assert strongest_source(index, ["d"], "a", cfg) is None
    assert strongest_source(index, ["a"], "unknown", cfg) is None


def test_invalid_indexes_are_rejected() -> None:
    with pytest.raises(ValueError):
        CooccurrenceIndex(("a",), np.zeros((2, 1), dtype=np.int32), np.zeros((2, 1), np.float32))
    with pytest.raises(ValueError):
        CooccurrenceIndex(("a",), np.zeros((1, 1), dtype=np.int32), -np.ones((1, 1), np.float32))


def _random_case(
    seed: int, n_items: int, n_offers: int, multi: bool
) -> tuple[CooccurrenceIndex, Catalogue, list[list[str]]]:
    rng = np.random.default_rng(seed)
    table = {
        f"i{i}": [(f"i{j}", float(rng.integers(0, 4))) for j in rng.choice(n_items, 5, False)]
        for i in range(n_items)
        if rng.random() < 0.8
    }
    catalogue = Catalogue(dim=4)
    for o in range(n_offers):
        items = tuple(f"i{j}" for j in rng.choice(n_items + 3, 2 if multi else 1, False))
        catalogue.upsert_offer(Offer(offer_id=f"o{o}", title="t", item_ids=items))
    recent = [
        [f"i{j}" for j in rng.choice(n_items + 3, int(rng.integers(0, 6)), False)] for _ in range(7)
    ]
    return CooccurrenceIndex.from_neighbours(table), catalogue, recent


@pytest.mark.parametrize("exponent", [1.0, 0.7])
@pytest.mark.parametrize("multi", [False, True])
@pytest.mark.parametrize("dense_sums", [False, True])
def test_sparse_scores_are_the_positive_dense_scores_bit_for_bit(
    multi: bool, dense_sums: bool, exponent: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.core.cooccurrence.index as cooccurrence

    monkeypatch.setattr(cooccurrence, "DENSE_SUM_FACTOR", 10**9 if dense_sums else 0)
    for seed in range(5):
        index, catalogue, recent = _random_case(seed, n_items=30, n_offers=25, multi=multi)
        snap = catalogue.snapshot()
        cfg = RecentItemsConfig(n_recent=4, recency_decay=0.7, exponent=exponent)
        dense = cooccurrence_scores(index, recent, snap, cfg)
        sparse = sparse_offer_scores(
            index, recent_rows(index, recent, cfg), offer_alignment(index, snap), cfg
        )
        assert len(sparse) == len(recent)
        for u, (rows, values) in enumerate(sparse):
            assert len(set(rows.tolist())) == len(rows)
            rebuilt = np.zeros(snap.size)
            rebuilt[rows] = values
            assert np.array_equal(rebuilt, dense[u])
            assert np.all(values > 0)


def test_sparse_scores_of_users_without_known_recent_items_are_empty() -> None:
    index = CooccurrenceIndex.from_neighbours(TABLE)
    catalogue = Catalogue(dim=4)
    catalogue.upsert_offer(Offer(offer_id="o-b", title="b", item_ids=("b",)))
    snap = catalogue.snapshot()
    cfg = RecentItemsConfig()
    rows = recent_rows(index, [[], ["zzz"], ["d"], ["a"]], cfg)
    sparse = sparse_offer_scores(index, rows, offer_alignment(index, snap), cfg)
    assert [r.tolist() for r, _ in sparse] == [[], [], [], [0]]
    assert sparse[3][1].tolist() == [1.0]  # a -> b 2, c 1: b is a's best
