"""Decayed popularity: recent interactions weigh more, offers inherit their items' or tags'."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.popularity import DAY_MS, OfferSources, PopularityTracker

pytestmark = pytest.mark.unit


def test_the_most_interacted_item_makes_its_offer_the_most_popular() -> None:
    tracker = PopularityTracker()
    for _ in range(3):
        tracker.observe("a", ["x"], 1.0, 0)
    tracker.observe("b", ["y"], 1.0, 0)
    pop = tracker.offer_popularity({"oa": (("a",), ()), "ob": (("b",), ()), "oc": (("c",), ())})
    assert pop == {"oa": 1.0, "ob": pytest.approx(1 / 3), "oc": 0.0}


def test_a_day_old_interaction_counts_half_of_a_fresh_one() -> None:
    tracker = PopularityTracker(half_life_ms=DAY_MS)
    tracker.observe("old", [], 1.0, 0)
    tracker.observe("new", [], 1.0, DAY_MS)
    pop = tracker.offer_popularity({"o-old": (("old",), ()), "o-new": (("new",), ())})
    assert pop["o-old"] == pytest.approx(0.5)


def test_an_offer_of_tags_only_takes_its_most_popular_tag() -> None:
    tracker = PopularityTracker()
    tracker.observe("a", ["garden", "eco"], 2.0, 0)
    tracker.observe("b", ["books"], 1.0, 0)
    pop = tracker.offer_popularity({"promo": ((), ("books", "unknown"))})
    assert pop["promo"] == pytest.approx(0.5)


def test_negative_and_zero_weights_do_not_count() -> None:
    tracker = PopularityTracker()
    tracker.observe("a", ["x"], -4.0, 0)
    tracker.observe("a", ["x"], 0.0, 0)
    assert tracker.items == {} and tracker.tags == {}


@given(st.lists(st.integers(min_value=0, max_value=2_000 * DAY_MS), min_size=2, max_size=30))
def test_rescaling_keeps_the_ratios_over_years_of_event_time(times: list[int]) -> None:
    tracker = PopularityTracker(half_life_ms=DAY_MS)
    for ts in sorted(times):
        tracker.observe("a" if ts % 2 else "b", [], 1.0, ts)
    pop = tracker.offer_popularity({"oa": (("a",), ()), "ob": (("b",), ())})
    assert max(pop.values()) == pytest.approx(1.0)
    assert all(0.0 <= p <= 1.0 for p in pop.values())


NAMES = st.sampled_from(["a", "b", "c", "d", "e"])
OFFER_SOURCES = st.lists(
    st.tuples(st.lists(NAMES, max_size=3).map(tuple), st.lists(NAMES, max_size=3).map(tuple)),
    max_size=12,
)


@given(
    OFFER_SOURCES,
    st.lists(st.tuples(NAMES, st.lists(NAMES, max_size=2), st.floats(0.1, 5.0)), max_size=20),
)
def test_the_vectorised_refresh_equals_the_per_offer_one(
    offers: list[tuple[tuple[str, ...], tuple[str, ...]]],
    seen: list[tuple[str, list[str], float]],
) -> None:
    tracker = PopularityTracker()
    for item, tags, weight in seen:
        tracker.observe(item, [f"t{t}" for t in tags], weight, 0)
    rows = [(items, tuple(f"t{t}" for t in tags)) for items, tags in offers]
    by_id = tracker.offer_popularity({f"o{i}": row for i, row in enumerate(rows)})
    array = tracker.offer_popularity_array(OfferSources.of(rows))
    assert array.tolist() == pytest.approx([by_id[f"o{i}"] for i in range(len(rows))])


def test_offers_without_items_take_their_tags_in_the_vectorised_refresh() -> None:
    tracker = PopularityTracker()
    tracker.observe("a", ["garden"], 4.0, 0)
    tracker.observe("b", ["books"], 1.0, 0)
    tracker.observe("c", ["books"], 1.0, 0)
    sources = OfferSources.of([(("b",), ("garden",)), ((), ("books", "unknown")), ((), ())])
    assert tracker.offer_popularity_array(sources).tolist() == pytest.approx([0.25, 0.5, 0.0])
    assert OfferSources.of([]).size == 0
    assert PopularityTracker().offer_popularity_array(sources).tolist() == [0.0, 0.0, 0.0]
    assert np.all(np.isfinite(tracker.offer_popularity_array(sources)))
