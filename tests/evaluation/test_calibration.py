"""The calibrated match measured: outcomes, reliability and ECE, thresholds, and the report."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from app.core.calibration import Calibration
from app.core.catalog_records import Item
from app.core.enums import EventType
from app.evaluation.calibration import (
    ReliabilityBin,
    TopLists,
    expected_calibration_error,
    next_positive_outcomes,
    reliability,
    threshold_table,
)
from app.evaluation.config import EvaluationConfig, MatchConfig
from app.evaluation.evaluate import build_catalogue, collab_recipe, evaluate, item_offer
from app.evaluation.replay import ItemOffers, Query
from app.learning.interactions import InteractionLog
from app.learning.model import CollabConfig
from tests.support.planted import MINUTE, T0, chain_log, group_log

pytestmark = pytest.mark.unit


def test_reliability_and_ece_of_a_hand_example() -> None:
    predicted = [0.9, 0.1, 0.2, 0.1, 0.9, 0.2]
    outcomes = [1, 0, 0, 0, 1, 1]
    table = reliability(predicted, outcomes, bins=3)
    assert table == [
        ReliabilityBin(n=2, predicted=pytest.approx(0.1), observed=0.0, low=0.1, high=0.1),
        ReliabilityBin(n=2, predicted=pytest.approx(0.2), observed=0.5, low=0.2, high=0.2),
        ReliabilityBin(n=2, predicted=pytest.approx(0.9), observed=1.0, low=0.9, high=0.9),
    ]
    # (2 x |0.1 - 0| + 2 x |0.2 - 0.5| + 2 x |0.9 - 1|) / 6
    assert expected_calibration_error(table) == pytest.approx((0.2 + 0.6 + 0.2) / 6)
    assert expected_calibration_error([]) == 0.0


def test_reliability_uses_equal_bins_of_the_sorted_predictions() -> None:
    table = reliability(np.linspace(0, 1, 25), np.zeros(25), bins=10)
    assert [b.n for b in table] == [3] * 5 + [2] * 5
    assert all(a.high <= b.low for a, b in pairwise(table))


def test_thresholds_hold_back_weak_offers_and_report_what_is_still_sent() -> None:
    matches = [[20.0, 8.0, 30.0], [6.0, 3.0, 1.0]]  # the third offer is beyond message_k
    hits = [np.array([False, True, True]), np.array([True, False, False])]
    outcomes = [np.array([True, True, True]), np.array([True, False, False])]
    rows = threshold_table(matches, hits, outcomes, message_k=2, thresholds=(0, 5, 10, 50))
    everything, five, ten, fifty = rows
    assert (everything.held_back, everything.offers_held_back) == (0.0, 0.0)
    assert (everything.hit_rate, everything.precision) == (1.0, 0.75)
    assert everything.mean_match == pytest.approx((20 + 8 + 6 + 3) / 4)
    assert (five.held_back, five.offers_held_back, five.hit_rate, five.precision) == (
        0.0, 0.25, 1.0, 1.0,
    )  # fmt: skip
    # at 10 %: the first decision sends only its first offer (no hit), the second nothing
    assert (ten.held_back, ten.offers_held_back, ten.hit_rate, ten.precision) == (
        0.5, 0.75, 0.0, 1.0,
    )  # fmt: skip
    assert (fifty.held_back, fifty.hit_rate, fifty.mean_match) == (1.0, 0.0, 0.0)
    assert all(r.decisions == 2 for r in rows)


def test_an_outcome_is_the_item_among_the_users_next_positive_events() -> None:
    items = ["A", "B", "C", "D", "E"]
    rows = [("u", "A", 5.0), ("u", "B", 5.0), ("v", "E", 5.0), ("u", "E", 2.0),
            ("u", "C", 4.0), ("u", "D", 5.0)]  # fmt: skip
    log = InteractionLog.from_columns(
        [u for u, _, _ in rows],
        [i for _, i, _ in rows],
        [T0 + k * MINUTE for k in range(len(rows))],
        [EventType.RATING] * len(rows),
        ratings=[r for _, _, r in rows],
        item_ids=items,
    )
    catalogue = [Item(item_id=i) for i in items]
    snap = build_catalogue(catalogue, [item_offer(i) for i in catalogue], 4).snapshot()
    offers = ItemOffers(log.item_ids, snap)
    row = {i: int(offers.of(log.item_ids.index(i))[0]) for i in items}
    query = Query(qid=0, user=log.user_ids.index("u"), ts_ms=T0 + MINUTE,
                  item=log.item_ids.index("B"), targets=offers.of(log.item_ids.index("B")),
                  seen=np.array([0]), recent=(0,), cold=False, returning=True)  # fmt: skip
    lists = TopLists(depth=5)
    lists.add(query, [row[i] for i in ("D", "C", "E", "A", "B")], [0.5, 0.4, 0.3, 0.2, 0.1])
    positive = log.positives(4.0)
    # u's positives from the query on: B, C, D (E rated 2 stars is not one; A is in the past)
    (two,) = next_positive_outcomes(lists, log, positive, offers, horizon=2)
    assert two.tolist() == [False, True, False, False, True]  # B and C
    (three,) = next_positive_outcomes(lists, log, positive, offers, horizon=3)
    assert three.tolist() == [True, True, False, False, True]
    assert lists.hits()[0].tolist() == [False, False, False, False, True]


def test_the_report_has_a_reliability_table_and_a_threshold_table() -> None:
    planted = chain_log(n_chains=4, chain_length=10, n_users=80)
    cfg = EvaluationConfig(
        k_max=10, collab=CollabConfig(dim=4), methods=("engine_collab",),
        match=MatchConfig(depth=10, message_k=3, min_bin=20, thresholds=(0, 10, 50)),
    )  # fmt: skip
    report = evaluate(planted.log, planted.items, None, cfg, source="chains")
    match = report.match
    assert match is not None
    cal = match.calibration
    assert isinstance(cal, Calibration) and cal.engine == collab_recipe(cfg)
    assert cal.fitted_on.source == "chains"
    assert cal.fitted_on.period_end_ms < report.split_ts_ms  # fitted before the test period
    assert match.offers == report.stats.n_queries * 10
    assert sum(b.n for b in match.reliability) == match.offers and len(match.reliability) == 10
    assert 0.0 <= match.ece <= 1.0
    assert [r.min_match for r in match.thresholds] == [0, 10, 50]
    nothing_held = match.thresholds[0]
    assert nothing_held.held_back == 0.0
    assert nothing_held.hit_rate == pytest.approx(report.methods["engine_collab"].hit_rate[3])
    held = [r.held_back for r in match.thresholds]
    assert held == sorted(held)  # a higher bar holds back at least as much
    doc = report.to_dict()["match"]
    assert len(doc["reliability"]) == 10 and len(doc["thresholds"]) == 3
    text = report.table()
    assert "reliability on the test period" in text and "expected calibration error" in text
    assert "min_match on messages of 3 offers" in text


def test_the_match_is_not_measured_without_engine_collab_or_when_disabled() -> None:
    planted = group_log(seed=1)
    small = CollabConfig(dim=4)
    assert (
        evaluate(
            planted.log,
            planted.items,
            None,
            EvaluationConfig(k_max=5, collab=small, methods=("popularity",)),
        ).match
        is None
    )
    off = EvaluationConfig(k_max=5, collab=small, methods=("engine_collab",),
                           match=MatchConfig(enabled=False))  # fmt: skip
    assert evaluate(planted.log, planted.items, None, off).match is None
