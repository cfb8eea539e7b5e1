"""The restock evaluation on tiny planted logs whose answers are known."""

from __future__ import annotations

import itertools

import pytest

from app.core.catalog_records import Item
from app.core.events import UserEvent
from app.datasets.synthetic import RestockSpec, ShopSpec, restock_log
from app.evaluation.restock import (
    RestockEvaluationConfig,
    evaluate_restock,
    population_intervals,
)

pytestmark = pytest.mark.unit

DAY = 86_400_000
T0 = 1_767_225_600_000
ITEMS = [
    Item(item_id="milk", title="Milk", tags=("grocery",), repeatable=True),
    Item(item_id="tv", title="TV", tags=("electronics",)),
    Item(item_id="book", title="Book", tags=("books",)),
]


def event(n: int, user: str, kind: str, item: str, day: float) -> UserEvent:
    return UserEvent(event_id=f"e{n}", user_id=user, type=kind, item_id=item,
                     ts=T0 + int(day * DAY))  # type: ignore[arg-type]  # fmt: skip


def test_only_restock_finds_a_due_repeat_purchase_that_taste_alone_ranks_below_another() -> None:
    # milk bought every 10 days; a tv liked twice in between, so the taste prefers the tv
    log = []
    for cycle in range(11):
        log.append(event(len(log), "u", "purchase", "milk", 10 * cycle))
        if cycle < 10:
            log.append(event(len(log), "u", "like", "tv", 10 * cycle + 5))
            log.append(event(len(log), "u", "like", "tv", 10 * cycle + 6))
    report = evaluate_restock(log, ITEMS, RestockEvaluationConfig(k=1))
    assert report.queries["repeat"] == report.queries["all"] >= 2
    assert report.hits["exclude_purchased"]["repeat"] == 0  # milk is excluded for good
    assert report.hits["include_purchased"]["repeat"] == 0  # the tv ranks first
    assert report.hits["restock"]["repeat"] == report.queries["repeat"]  # milk due, lifted


def test_an_item_bought_again_before_it_is_due_is_missed_by_restock_too() -> None:
    # a 10-day cycle learned, then milk bought again after 2 days: not due yet
    days = [0, 10, 20, 30, 40, 50, 60, 70, 72]
    log = [event(n, "u", "purchase", "milk", d) for n, d in enumerate(days)]
    log += [event(100 + n, "u", "like", "tv", d + 1) for n, d in enumerate(days)]
    report = evaluate_restock(log, ITEMS, RestockEvaluationConfig(k=1, split_quantile=0.9))
    assert report.queries["repeat"] == 1
    assert report.hits["restock"]["repeat"] == 0


def test_the_population_interval_is_the_median_gap_of_people_s_consecutive_purchases() -> None:
    log = [
        event(1, "a", "purchase", "milk", 0),
        event(2, "a", "purchase", "milk", 4),
        event(3, "a", "purchase", "milk", 4.01),  # the same trip: one purchase
        event(4, "b", "purchase", "milk", 1),
        event(5, "b", "purchase", "milk", 11),
        event(6, "b", "purchase", "milk", 17),
        event(7, "b", "purchase", "tv", 2),
        event(8, "b", "purchase", "tv", 9),  # not repeatable: no interval
    ]
    assert population_intervals(log, {"milk"}, 3_600_000) == {"milk": 6 * DAY}


def test_the_planted_log_is_deterministic_and_plants_cycles_of_repeatable_items() -> None:
    spec = RestockSpec(repeatable_items=5, shoppers=10, span_days=60, background_events=300)
    shop = ShopSpec(items=100, offers=10, users=50)
    one, two = restock_log(spec, shop, T0), restock_log(spec, shop, T0)
    assert one.events == two.events
    repeatable = {i["item_id"] for i in one.shop.items if i.get("repeatable")}
    assert len(repeatable) == 5 and set(one.item_cycle_ms) == repeatable
    planted = [e for e in one.events if e.get("context", {}).get("planted")]
    assert {e["item_id"] for e in planted} <= repeatable
    for (user, item), cycle in one.personal_cycle_ms.items():
        times = [e["ts"] for e in planted if (e["user_id"], e["item_id"]) == (user, item)]
        assert times and all(b - a >= cycle // 5 for a, b in itertools.pairwise(times))
    assert [e["ts"] for e in one.events] == sorted(e["ts"] for e in one.events)
