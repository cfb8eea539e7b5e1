"""Repurchase cycles of repeatable items: learned from a person's purchases, due by them."""

from __future__ import annotations

import pytest

from app.core.catalog import Catalogue
from app.core.catalog_records import Item, Offer
from app.core.restock import (
    Cycle,
    RestockConfig,
    cycles_from_json,
    cycles_to_json,
    due_items,
    restock_rows,
    update_cycles,
)

pytestmark = pytest.mark.unit

DAY = 86_400_000
CFG = RestockConfig(due_fraction=0.8, smoothing=0.5, prior_ms=10 * DAY, items_max=3)


def test_a_first_purchase_starts_a_cycle_without_an_interval_of_its_own() -> None:
    assert update_cycles({}, [("milk", 5 * DAY)], CFG) == {"milk": Cycle(5 * DAY, 0, 1)}


def test_the_second_purchase_sets_the_interval_and_later_ones_smooth_it() -> None:
    cycles = update_cycles({}, [("milk", 0), ("milk", 4 * DAY)], CFG)
    assert cycles["milk"] == Cycle(4 * DAY, 4 * DAY, 2)
    cycles = update_cycles(cycles, [("milk", 10 * DAY)], CFG)  # gap 6 days: mean of 6 and 4
    assert cycles["milk"] == Cycle(10 * DAY, 5 * DAY, 3)


def test_purchases_are_applied_in_time_order_whatever_their_order_in_the_batch() -> None:
    shuffled = update_cycles({}, [("milk", 10 * DAY), ("milk", 0), ("milk", 4 * DAY)], CFG)
    ordered = update_cycles({}, [("milk", 0), ("milk", 4 * DAY), ("milk", 10 * DAY)], CFG)
    assert shuffled == ordered


def test_a_purchase_in_the_same_trip_or_older_than_the_latest_changes_nothing() -> None:
    cycles = {"milk": Cycle(10 * DAY, 4 * DAY, 2)}
    assert update_cycles(cycles, [("milk", 10 * DAY + 60_000)], CFG) == cycles
    assert update_cycles(cycles, [("milk", 3 * DAY)], CFG) == cycles


def test_a_gap_longer_than_the_longest_interval_counts_as_the_longest() -> None:
    cfg = CFG.model_copy(update={"max_interval_ms": 30 * DAY})
    cycles = update_cycles({}, [("milk", 0), ("milk", 400 * DAY)], cfg)
    assert cycles["milk"].interval_ms == 30 * DAY


def test_only_the_most_recently_bought_items_are_kept() -> None:
    bought = [(f"item-{n}", n * DAY) for n in range(5)]
    assert set(update_cycles({}, bought, CFG)) == {"item-2", "item-3", "item-4"}


def test_an_item_is_due_from_the_fraction_of_its_interval_on_with_a_bounded_dueness() -> None:
    cycles = {"milk": Cycle(0, 10 * DAY, 3)}
    repeatable = {"milk"}
    assert due_items(cycles, 7 * DAY, CFG, repeatable) == {}
    assert due_items(cycles, 8 * DAY, CFG, repeatable) == {"milk": pytest.approx(0.8)}
    assert due_items(cycles, 30 * DAY, CFG, repeatable) == {"milk": 1.0}


def test_one_purchase_is_due_by_the_items_prior_else_the_configured_one() -> None:
    cycles = {"milk": Cycle(0, 0, 1), "soap": Cycle(0, 0, 1)}
    due = due_items(cycles, 5 * DAY, CFG, {"milk", "soap"}, priors={"milk": 5 * DAY})
    assert due == {"milk": 1.0}  # soap waits for the configured 10 days (8 with the fraction)
    assert set(due_items(cycles, 8 * DAY, CFG, {"milk", "soap"})) == {"milk", "soap"}


def test_an_item_no_longer_repeatable_is_never_due() -> None:
    assert due_items({"milk": Cycle(0, DAY, 2)}, 50 * DAY, CFG, repeatable=set()) == {}


def test_restock_rows_lift_every_offer_of_a_due_item_by_its_best_dueness() -> None:
    cat = Catalogue(dim=8)
    for item in ("milk", "bread"):
        cat.upsert_item(Item(item_id=item, tags=("grocery",), repeatable=True))
    cat.upsert_offer(Offer(offer_id="o-milk", title="Milk", item_ids=("milk",)))
    cat.upsert_offer(Offer(offer_id="o-both", title="Both", item_ids=("milk", "bread")))
    cat.upsert_offer(Offer(offer_id="o-other", title="Other", item_ids=("tea",)))
    snap = cat.snapshot()
    rows, values = restock_rows({"milk": 0.9, "bread": 1.0}, snap)
    lifted = {snap.offer_ids[r]: v for r, v in zip(rows.tolist(), values.tolist(), strict=True)}
    assert lifted == {"o-milk": 0.9, "o-both": 1.0}


def test_the_catalogue_names_repeatable_items_of_items_and_of_offers_and_their_priors() -> None:
    cat = Catalogue(dim=8)
    cat.upsert_item(Item(item_id="milk", repeatable=True, restock_days=7))
    cat.upsert_item(Item(item_id="tv"))
    cat.upsert_offer(Offer(offer_id="o", title="Soap", item_ids=("soap",), repeatable=True))
    snap = cat.snapshot()
    assert snap.repeatable == {"milk", "soap"}
    assert snap.restock_prior_ms == {"milk": 7 * DAY}


def test_cycles_survive_their_json_form() -> None:
    cycles = {"milk": Cycle(1, 2, 3), "soap": Cycle(4, 0, 1)}
    assert cycles_from_json(cycles_to_json(cycles)) == cycles
