from __future__ import annotations

import numpy as np
import pytest

from app.core.catalog import Catalogue
from app.core.catalog_records import Item, Offer
from app.core.reasons import (
    REASON_POPULAR,
    REASON_SIMILAR,
    build_reason,
    strongest_tags,
)

pytestmark = pytest.mark.unit

OFFER = Offer(offer_id="o-1", title="Space Box")
FALLBACK = "Best available for you now: Space Box"


def parts(**kw: float) -> dict[str, float]:
    return {"affinity": 0.0, "value": 0.0, "popularity": 0.0, "priority": 0.0, **kw}


def catalogue() -> Catalogue:
    cat = Catalogue(dim=64)
    cat.upsert_item(Item(item_id="a", tags=("sci-fi", "space")))
    cat.upsert_item(Item(item_id="b", tags=("romance", "drama")))
    cat.upsert_offer(Offer(offer_id="o", title="t", tags=("kids",)))
    return cat


def test_strongest_tags_follow_the_profile() -> None:
    cat = catalogue()
    prefs = 3 * cat.item_vector("a") + 0.5 * cat.item_vector("b")  # type: ignore[operator]
    top = strongest_tags(prefs, cat, n=3)
    assert [t for t, _ in top[:2]] == ["sci-fi", "space"]
    assert all(score > 0 for _, score in top)
    assert [s for _, s in top] == sorted((s for _, s in top), reverse=True)
    assert len(strongest_tags(prefs, cat, n=1)) == 1


def test_strongest_tags_of_a_cold_or_broken_profile_are_empty() -> None:
    cat = catalogue()
    assert strongest_tags(np.zeros(64), cat) == []
    assert strongest_tags(np.full(64, np.nan), cat) == []
    assert strongest_tags(np.ones(64), Catalogue(dim=64)) == []


def test_strongest_tags_skip_disliked_tags() -> None:
    cat = catalogue()
    prefs = -1.0 * cat.item_vector("b")  # type: ignore[operator]
    assert {t for t, _ in strongest_tags(prefs, cat, n=10)}.isdisjoint({"romance", "drama"})


def test_reason_names_the_dominant_part() -> None:
    assert build_reason(parts(affinity=0.5, value=0.1), OFFER, ["sci-fi", "space", "x"]) == (
        "Matches your interest in sci-fi, space"
    )
    assert build_reason(parts(affinity=0.5), OFFER, []) == REASON_SIMILAR
    assert build_reason(parts(affinity=0.1, value=0.2), OFFER, ["a"]) == "Great value: Space Box"
    assert build_reason(parts(popularity=0.05, value=0.01), OFFER, []) == REASON_POPULAR
    assert build_reason(parts(priority=0.05), OFFER, []) == "Featured: Space Box"
    assert build_reason(parts(), OFFER, []) == FALLBACK
    assert build_reason(parts(affinity=-0.3), OFFER, ["a"]) == FALLBACK


def test_reason_tag_count_is_configurable() -> None:
    reason = build_reason(parts(affinity=1.0), OFFER, ["a", "b", "c"], max_tags=3)
    assert reason == "Matches your interest in a, b, c"


def test_reason_uses_the_offer_id_when_the_title_is_blank() -> None:
    blank = Offer(offer_id="o-9", title="  ")
    assert build_reason(parts(value=0.2), blank, []) == "Great value: o-9"


def test_a_dominant_cooccurrence_part_names_the_recent_item_it_comes_from() -> None:
    scores = parts(affinity=0.1, cooccurrence=0.3)
    reason = build_reason(scores, OFFER, ["sci-fi"], because=lambda offer: "Alien")
    assert reason == "Because you chose Alien"


def test_a_cooccurrence_part_without_a_named_source_leaves_the_reason_to_the_next_part() -> None:
    scores = parts(affinity=0.1, value=0.05, cooccurrence=0.3)
    assert build_reason(scores, OFFER, ["sci-fi"]) == "Matches your interest in sci-fi"
    unnamed = build_reason(scores, OFFER, ["sci-fi"], because=lambda offer: None)
    assert unnamed == "Matches your interest in sci-fi"
    assert build_reason(parts(cooccurrence=0.3), OFFER, []) == FALLBACK


def test_a_smaller_cooccurrence_part_does_not_name_its_source() -> None:
    scores = parts(value=0.2, cooccurrence=0.1)
    assert build_reason(scores, OFFER, [], because=lambda o: "Alien") == "Great value: Space Box"
