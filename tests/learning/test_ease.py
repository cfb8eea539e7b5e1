"""Learned item-item weights (EASE) as the neighbour index: the closed form, the windows,
the sparsification, the blend with co-occurrence, and the records the workers read."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from app.core.cooccurrence.hybrid import HybridConfig, hybrid_score_batch
from app.core.cooccurrence.index import (
    CooccurrenceIndex,
    RecentItemsConfig,
    item_scores,
    offer_alignment,
    recent_rows,
    sparse_offer_scores,
)
from app.core.cooccurrence.table import NeighbourTable, decode_neighbours, neighbours_record
from app.core.enums import EventType
from app.core.scoring import ScoringConfig
from app.evaluation.evaluate import build_catalogue, item_offer
from app.learning.ease import (
    EaseConfig,
    blend_indexes,
    design_matrix,
    ease_weights,
    learn_ease_neighbours,
    sparsify,
)
from app.learning.interactions import InteractionLog
from app.learning.model import CollabConfig, learn_neighbours
from tests.support.planted import T0, chain_log

pytestmark = pytest.mark.unit


def _log(
    sequences: dict[str, list[str]], ratings: dict[str, list[float]] | None = None
) -> InteractionLog:
    users, items, ts, kinds, stars = [], [], [], [], []
    t = T0
    for user, seq in sequences.items():
        for k, item in enumerate(seq):
            users.append(user)
            items.append(item)
            ts.append(t)
            t += 1
            if ratings is None:
                kinds.append(EventType.VIEW)
                stars.append(None)
            else:
                kinds.append(EventType.RATING)
                stars.append(ratings[user][k])
    return InteractionLog.from_columns(users, items, ts, kinds, ratings=stars)


def test_two_items_always_together_predict_each_other_two_thirds() -> None:
    # X'X = [[2, 2], [2, 2]]; + 1 I -> P = [[3, -2], [-2, 3]] / 5; B = -P / diag(P)
    active, b = ease_weights(sp.csr_matrix(np.ones((2, 2))), 1.0)
    assert active.tolist() == [0, 1]
    assert b == pytest.approx(np.array([[0.0, 2 / 3], [2 / 3, 0.0]]))


def test_items_without_a_row_are_left_out() -> None:
    x = sp.csr_matrix(np.array([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]]))
    active, b = ease_weights(x, 1.0)
    assert active.tolist() == [0, 2] and b.shape == (2, 2)


def test_sparsify_keeps_the_best_positive_weights_under_the_item_codes() -> None:
    ids = ("a", "b", "c", "d", "e")
    active = np.array([0, 2, 3, 4], dtype=np.intp)  # "b" is not active
    weights = np.array(
        [
            [0.0, 0.5, 0.2, -0.3],
            [0.1, 0.0, -0.1, 0.1],
            [-0.2, -0.1, 0.0, -0.4],
            [0.3, 0.6, 0.9, 0.0],
        ]
    )
    index = sparsify(ids, active, weights, max_neighbours=2)
    assert index.neighbours_of("a") == [("c", 0.5), ("d", pytest.approx(0.2))]
    assert index.neighbours_of("c") == [("a", pytest.approx(0.1)), ("e", pytest.approx(0.1))]
    assert index.neighbours_of("d") == []  # only negative weights
    assert index.neighbours_of("b") == []
    assert index.neighbours_of("e") == [("d", pytest.approx(0.9)), ("c", pytest.approx(0.6))]


def test_windows_pair_only_items_within_the_window() -> None:
    log = _log({"u": ["a", "b", "b", "c", "d"], "v": ["d", "a"]})
    x = design_matrix(log, EaseConfig(window=2)).toarray()
    gram = x.T @ x
    a, b, c, d = (log.item_ids.index(i) for i in "abcd")
    assert x.shape[0] == 6  # u: a b c d (the repeat collapsed), v: d a
    assert gram[a, b] == 1 and gram[b, c] == 1 and gram[c, d] == 1 and gram[d, a] == 1
    assert gram[a, c] == 0 and gram[b, d] == 0
    per_user = design_matrix(log, EaseConfig(window=None)).toarray()
    assert per_user.shape[0] == 2 and (per_user.T @ per_user)[a, c] == 1


def test_positives_only_leaves_out_low_ratings() -> None:
    log = _log({"u": ["a", "b", "c"]}, {"u": [5.0, 2.0, 4.0]})
    x = design_matrix(log, EaseConfig(window=None, positives_only=True)).toarray()
    assert x[0].tolist() == [1.0, 0.0, 1.0]
    everything = design_matrix(log, EaseConfig(window=None)).toarray()
    assert everything[0].tolist() == [1.0, 1.0, 1.0]


def test_stars_weigh_each_rated_item_of_a_whole_history() -> None:
    log = _log({"u": ["a", "b", "c", "a"]}, {"u": [5.0, 2.0, 4.0, 5.0]})
    x = design_matrix(log, EaseConfig(window=None, stars=True)).toarray()
    a, b, c = (log.item_ids.index(i) for i in "abc")
    assert x[0, [a, b, c]].tolist() == pytest.approx([1.0, 0.4, 0.8])  # "a" twice: at most 1
    views = _log({"v": ["a", "b"]})
    assert design_matrix(views, EaseConfig(window=None, stars=True)).toarray().tolist() == [
        [1.0, 1.0]
    ]  # interactions without stars weigh 1


def test_stars_are_refused_with_windows() -> None:
    with pytest.raises(ValueError, match="whole histories"):
        EaseConfig(window=5, stars=True)


def test_the_whole_history_share_links_items_further_apart_than_the_window() -> None:
    # "a" and "z" are always 3 items apart: no window of 2 holds both, every history does
    fill = [["p", "q"], ["r", "s"], ["t", "p"], ["q", "s"]]
    log = _log({f"u{k}": ["a", *f, "z"] for k, f in enumerate(fill)})
    windows = EaseConfig(lam=0.5, window=2)
    whole = EaseConfig(lam=0.5, window=None)
    alone = learn_neighbours(log, CollabConfig(ease=windows, user_ease=whole, user_ease_share=0))
    blend = learn_neighbours(log, CollabConfig(ease=windows, user_ease=whole, user_ease_share=0.2))
    assert "z" not in dict(alone.neighbours_of("a"))
    assert "z" in dict(blend.neighbours_of("a"))
    assert alone.neighbours_of("a") == learn_ease_neighbours(log, windows).neighbours_of("a")
    expected = blend_indexes(
        learn_ease_neighbours(log, windows), learn_ease_neighbours(log, whole), 0.8, 200
    )
    assert blend.neighbours_of("a") == expected.neighbours_of("a")


def test_chains_make_the_next_step_the_top_ease_neighbour() -> None:
    planted = chain_log()
    index = learn_ease_neighbours(planted.log, EaseConfig(lam=1.0, window=2))
    for item in ("c0-s03", "c1-s05", "c2-s02"):
        chain, step = item[:2], int(item[-2:])
        best = {n for n, _ in index.neighbours_of(item)[:2]}
        assert best == {f"{chain}-s{step - 1:02d}", f"{chain}-s{step + 1:02d}"}


def test_blend_scales_each_index_by_its_largest_weight() -> None:
    ids = ("a", "b", "c")
    first = CooccurrenceIndex.from_neighbours({"a": [("b", 4.0), ("c", 2.0)], "b": [], "c": []})
    second = CooccurrenceIndex.from_neighbours({"a": [("c", 0.5)], "b": [("a", 0.25)], "c": []})
    assert first.item_ids == second.item_ids == ids
    blend = blend_indexes(first, second, share=0.75, max_neighbours=5)
    a = dict(blend.neighbours_of("a"))
    assert a == pytest.approx({"b": 0.75, "c": 0.75 * 0.5 + 0.25})
    assert blend.neighbours_of("b") == [("a", pytest.approx(0.25 * 0.5))]
    with pytest.raises(ValueError, match="same item ids"):
        blend_indexes(first, CooccurrenceIndex.from_neighbours({"x": [("y", 1.0)]}), 0.5, 5)


def test_the_model_learns_the_index_its_config_names() -> None:
    log = chain_log().log
    ease = learn_neighbours(log, CollabConfig(neighbours="ease"))
    counts = learn_neighbours(log, CollabConfig(neighbours="cooccurrence"))
    both = learn_neighbours(log, CollabConfig(neighbours="both", neighbour_blend=1.0))
    assert ease.neighbours_of("c0-s03") != counts.neighbours_of("c0-s03")
    top = max(w for _, w in ease.neighbours_of("c0-s03"))
    scale = float(ease.weights.max())
    assert max(w for _, w in both.neighbours_of("c0-s03")) == pytest.approx(top / scale)


def test_published_records_give_the_workers_the_same_scores() -> None:
    planted = chain_log()
    index = learn_ease_neighbours(planted.log, EaseConfig(lam=1.0, window=3))
    assert float(index.weights.max()) == 1.0
    table = NeighbourTable()
    for record in index.to_records():
        decoded = decode_neighbours(neighbours_record(record["item_id"], record["neighbours"]))
        table.upsert(decoded.item_id, list(decoded.neighbours))
    catalogue = build_catalogue(planted.items, [item_offer(i) for i in planted.items], 4)
    snap = catalogue.snapshot()
    cfg = RecentItemsConfig(n_recent=3, recency_decay=0.5)
    recent = [["c0-s02", "c0-s01"], ["c3-s07"], []]
    direct = sparse_offer_scores(
        index, recent_rows(index, recent, cfg), offer_alignment(index, snap), cfg
    )
    live = table.scores(recent, snap, cfg)
    for (rows_a, vals_a), (rows_b, vals_b) in zip(direct, live, strict=True):
        got = dict(zip(rows_b.tolist(), vals_b.tolist(), strict=True))
        want = dict(zip(rows_a.tolist(), vals_a.tolist(), strict=True))
        assert got.keys() == want.keys()
        # records keep 6 decimals of weights scaled to at most 1
        assert list(got.values()) == pytest.approx([want[k] for k in got], abs=1e-5)
    # the newest recent item's next step is the best offer of the first user
    best = int(direct[0][0][np.argmax(direct[0][1])])
    assert snap.offer_ids[best] == "c0-s03"
    dense = item_scores(index, recent_rows(index, recent[:1], cfg), cfg)
    assert index.item_ids[int(np.argmax(dense[0]))] == "c0-s03"


def test_only_the_most_frequent_items_are_solved_over_when_capped() -> None:
    log = _log({"u": ["a", "b", "c"], "v": ["a", "b"], "w": ["a", "b", "c"], "x": ["d", "a"]})
    index = learn_ease_neighbours(log, EaseConfig(lam=0.5, window=None, max_items=3))
    assert {n for n, _ in index.neighbours_of("a")} <= {"b", "c"}
    assert index.neighbours_of("d") == []
    assert index.neighbours_of("b")  # a frequent item keeps its neighbours
    full = learn_ease_neighbours(log, EaseConfig(lam=0.5, window=None))
    assert "d" in {n for n, _ in full.neighbours_of("a")}


def test_score_batch_ranks_the_next_step_first_from_the_published_ease_neighbours() -> None:
    planted = chain_log()
    index = learn_ease_neighbours(planted.log, EaseConfig(lam=1.0, window=3))
    table = NeighbourTable()
    for record in index.to_records():
        table.upsert(record["item_id"], [(n, w) for n, w in record["neighbours"]])
    catalogue = build_catalogue(planted.items, [item_offer(i) for i in planted.items], 4)
    cfg = HybridConfig(scoring=ScoringConfig(w_affinity=0.0, w_popularity=0.0, w_value=0.0))
    recent = [["c1-s04", "c1-s03"], ["c2-s06"]]
    ranked = hybrid_score_batch(
        np.zeros((2, 4), dtype=np.float32), recent, T0, catalogue, table.index(), cfg,
        exclude=[set(r) for r in recent],
    )  # fmt: skip
    assert ranked[0][0].offer_id == "c1-s05"
    assert ranked[0][0].reason == "Because you chose Step 4 of chain 1"
    assert ranked[1][0].offer_id in {"c2-s05", "c2-s07"}
