"""The strong baselines: EASE in closed form, updated in real time; its recency variant; the
item kNN; popularity of positive events only."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from app.core.catalog_records import Item
from app.core.enums import EventType
from app.evaluation.baseline_tuning import BaselineParams, tune_baselines
from app.evaluation.baselines import (
    FITS,
    ItemItem,
    PositivePopularity,
    RealTimeEase,
    RealTimeItemKnn,
    design,
    fit_cosine,
    fit_ease,
    positive_matrix,
)
from app.evaluation.evaluate import build_catalogue, item_offer
from app.evaluation.metrics import RankingMetrics
from app.evaluation.replay import ItemOffers, Query
from app.learning.interactions import InteractionLog
from tests.support.planted import T0

pytestmark = pytest.mark.unit

HOUR = 3_600_000


def test_ease_solves_its_closed_form() -> None:
    rng = np.random.default_rng(0)
    dense = (rng.random((40, 6)) < 0.4).astype(float)
    dense[:, 5] = 0.0  # an item nobody liked is not in the matrix
    lam = 3.0
    fit = fit_ease(sp.csr_matrix(dense), lam)
    assert fit.items.tolist() == [0, 1, 2, 3, 4] and fit.row(5) is None
    x = dense[:, :5]
    # B minimises ||X - XB||^2 + lam ||B||^2 with diag(B) = 0: column j is the ridge
    # regression of item j on the other items
    for j in range(5):
        others = [i for i in range(5) if i != j]
        a = x[:, others]
        coef = np.linalg.solve(a.T @ a + lam * np.eye(4), a.T @ x[:, j])
        assert fit.weights[others, j] == pytest.approx(coef, rel=1e-4, abs=1e-6)
        assert fit.weights[j, j] == 0.0


def test_cosine_is_the_angle_between_item_columns() -> None:
    x = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 1], [1, 1, 0]], dtype=float))
    fit = fit_cosine(x)
    assert fit.weights[0, 1] == pytest.approx(2 / np.sqrt(3 * 2))
    assert fit.weights[1, 2] == 0.0 and fit.weights[0, 0] == 0.0


def _log() -> tuple[InteractionLog, list[Item]]:
    rows = [("u", "A", EventType.LIKE, 0), ("u", "B", EventType.RATING, 1),
            ("v", "A", EventType.LIKE, 2), ("v", "C", EventType.LIKE, 3),
            ("u", "C", EventType.RATING, 4)]  # fmt: skip
    items = [Item(item_id=i, title=i, tags=(i.lower(),)) for i in "ABCD"]
    log = InteractionLog.from_columns(
        [r[0] for r in rows], [r[1] for r in rows], [T0 + r[3] * HOUR for r in rows],
        [r[2] for r in rows], ratings=[None, 2.0, None, None, 5.0],
        item_ids=[i.item_id for i in items],
    )  # fmt: skip
    return log, items


def _query(log: InteractionLog, user: str, recent: tuple[str, ...], seen: tuple[str, ...]) -> Query:
    code = {i: n for n, i in enumerate(log.item_ids)}
    return Query(qid=0, user=log.user_ids.index(user), ts_ms=T0 + 9 * HOUR, item=code["D"],
                 targets=np.array([code["D"]]), seen=np.array([code[i] for i in seen]),
                 recent=tuple(code[i] for i in recent), cold=False, returning=True)  # fmt: skip


def test_positive_popularity_counts_only_positive_events() -> None:
    log, items = _log()
    snap = build_catalogue(items, [item_offer(i) for i in items], 4).snapshot()
    offers = ItemOffers(log.item_ids, snap)
    positive = log.positives(4.0)
    assert positive.tolist() == [True, False, True, True, True]  # a 2-star rating is not
    method = PositivePopularity(RankingMetrics(4, snap.size), snap, offers, positive)
    method.warm_up(log, len(log))
    assert method._scores(_query(log, "u", (), ())).tolist() == [2.0, 0.0, 2.0, 0.0]


def test_real_time_ease_adds_a_row_per_new_positive_and_recency_weighs_by_age() -> None:
    log, items = _log()
    snap = build_catalogue(items, [item_offer(i) for i in items], 4).snapshot()
    offers = ItemOffers(log.item_ids, snap)
    positive = log.positives(4.0)
    fit = fit_ease(positive_matrix(log, len(log), positive), 1.0)
    plain = RealTimeEase(RankingMetrics(4, snap.size), snap, offers, fit, positive)
    recency = RealTimeEase(RankingMetrics(4, snap.size), snap, offers, fit, positive, float(HOUR))
    for method in (plain, recency):
        method.warm_up(log, 3)  # u: A (the 2-star B is not positive); v: A
        method.observe(log, 3, 4)  # v: C
        method.observe(log, 4, 5)  # u: C, 3 hours after A
    a, c = fit.row(0), fit.row(2)
    assert a is not None and c is not None
    user = _query(log, "u", (), ())
    assert plain._scores(user)[[0, 2]] == pytest.approx((a + c)[[0, 1]])
    # A is 4 hours older than C at u's last event: it weighs 2^-4
    assert recency._scores(user)[[0, 2]] == pytest.approx((a / 16 + c)[[0, 1]])


def test_item_knn_weighs_the_recent_items_by_decay() -> None:
    log, items = _log()
    snap = build_catalogue(items, [item_offer(i) for i in items], 4).snapshot()
    offers = ItemOffers(log.item_ids, snap)
    positive = log.positives(4.0)
    fit = fit_cosine(positive_matrix(log, len(log), positive))
    knn = RealTimeItemKnn(RankingMetrics(4, snap.size), snap, offers, fit, n_recent=2, decay=0.5)
    a, c = fit.row(0), fit.row(2)
    assert a is not None and c is not None
    got = knn._scores(_query(log, "u", ("C", "A", "B"), ()))  # newest first; B beyond n_recent
    assert got[[0, 2]] == pytest.approx((c + 0.5 * a)[[0, 1]])


def test_real_time_ease_by_position_weighs_the_j_th_newest_item_decay_to_the_j() -> None:
    log, items = _log()
    snap = build_catalogue(items, [item_offer(i) for i in items], 4).snapshot()
    offers = ItemOffers(log.item_ids, snap)
    positive = log.positives(4.0)
    fit = fit_ease(positive_matrix(log, len(log), positive), 1.0)
    by_step = RealTimeEase(RankingMetrics(4, snap.size), snap, offers, fit, positive,
                           name="step", step_decay=0.5)  # fmt: skip
    by_step.warm_up(log, len(log))  # u: A, then C (the 2-star B is no positive)
    a, c = fit.row(0), fit.row(2)
    assert a is not None and c is not None
    assert by_step._scores(_query(log, "u", (), ()))[[0, 2]] == pytest.approx((0.5 * a + c)[[0, 1]])


def test_a_retrained_ease_scores_every_history_as_if_the_new_weights_had_always_been() -> None:
    log, items = _log()
    snap = build_catalogue(items, [item_offer(i) for i in items], 4).snapshot()
    offers = ItemOffers(log.item_ids, snap)
    positive = log.positives(4.0)
    old = fit_ease(positive_matrix(log, 1, positive), 1.0)  # learned from the first row only
    new = fit_ease(positive_matrix(log, len(log), positive), 1.0)
    seen: list[int] = []

    def refit(end: int) -> ItemItem:
        seen.append(end)
        return new

    retrained = RealTimeEase(RankingMetrics(4, snap.size), snap, offers, old, positive,
                             step_decay=0.5, refit=refit)  # fmt: skip
    retrained.warm_up(log, len(log))
    retrained.retrain(log, len(log))
    fresh = RealTimeEase(RankingMetrics(4, snap.size), snap, offers, new, positive,
                         step_decay=0.5)  # fmt: skip
    fresh.warm_up(log, len(log))
    query = _query(log, "u", (), ())
    assert seen == [len(log)]
    assert retrained._scores(query) == pytest.approx(fresh._scores(query))
    stale = RealTimeEase(RankingMetrics(4, snap.size), snap, offers, old, positive,
                         step_decay=0.5)  # fmt: skip
    stale.warm_up(log, len(log))
    assert retrained._scores(query) != pytest.approx(stale._scores(query))


def tuned_on_pairs(seed: int, groups: list[tuple[str, int, int, float]]) -> BaselineParams:
    """The baselines tuned on a log of item pairs (p_k, q_k) rated one after the other; per
    group: user prefix, users, pairs per user, p_k's stars (q_k always gets 5)."""
    rng = np.random.default_rng(seed)
    users: list[str] = []
    item_ids: list[str] = []
    stars: list[float] = []
    for prefix, n_users, pairs, p_stars in groups:
        for u in range(n_users):
            for k in rng.choice(6, size=pairs, replace=False).tolist():
                users += [f"{prefix}{u}", f"{prefix}{u}"]
                item_ids += [f"p{k}", f"q{k}"]
                stars += [p_stars, 5.0]
    items = [Item(item_id=f"{x}{k}", title=f"{x}{k}") for x in "pq" for k in range(6)]
    log = InteractionLog.from_columns(
        users, item_ids, [T0 + n * HOUR for n in range(len(users))],
        [EventType.RATING] * len(users), ratings=stars, item_ids=[i.item_id for i in items],
    )  # fmt: skip
    snap = build_catalogue(items, [item_offer(i) for i in items], 4).snapshot()
    return tune_baselines(
        log, len(log), log.positives(4.0), ItemOffers(log.item_ids, snap), snap, 0.5, k=1
    )


def test_validation_chooses_a_history_of_every_interaction_when_the_low_rated_item_tells() -> None:
    # pairs (p_k, q_k) liked together early; later people rate p_k 2 stars, then like q_k:
    # only a history that holds the 2-star p_k points to q_k
    params = tuned_on_pairs(0, [("u", 40, 2, 5.0), ("v", 40, 3, 2.0)])
    assert params.ease_recency_all_events is True
    # the plain EASE has the same choice now (its history too may hold every interaction)
    assert params.ease_all_events is True


def test_validation_learns_the_weights_from_every_interaction_when_only_low_ratings_link() -> None:
    # every p_k is rated 2 stars, then its q_k 5 stars: learned from the positives alone the
    # weights know nothing of p_k; learned from every interaction, p_k points to q_k
    params = tuned_on_pairs(1, [("u", 120, 3, 2.0)])
    assert params.ease_recency_fit != "positives" and params.ease_recency_all_events
    assert params.ease_fit != "positives" and params.ease_all_events
    assert params.knn_fit != "positives"
    assert params.validation_hit_rate["ease_recency"] > 0.5


def test_the_weights_may_learn_from_positives_every_interaction_or_the_stars() -> None:
    log = InteractionLog.from_columns(
        ["u", "u", "v", "v"], ["a", "b", "a", "b"], [T0 + n * HOUR for n in range(4)],
        [EventType.RATING, EventType.RATING, EventType.RATING, EventType.LIKE],
        ratings=[5.0, 2.0, 3.0, None], item_ids=["a", "b"],
    )  # fmt: skip
    positive = log.positives(4.0)
    u, v = log.user_ids.index("u"), log.user_ids.index("v")
    dense = {fit: design(log, len(log), positive, fit).toarray() for fit in FITS}
    assert dense["positives"][[u, v]].tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert dense["interactions"][[u, v]].tolist() == [[1.0, 1.0], [1.0, 1.0]]
    # the stars / 5; an interaction without stars (a like) weighs 1
    assert dense["ratings"][[u, v]].tolist() == [[1.0, 0.4], [0.6, 1.0]]
    with pytest.raises(ValueError):
        design(log, len(log), positive, "guesses")
