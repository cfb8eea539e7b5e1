from __future__ import annotations

from enum import StrEnum

import pytest

from app.core.enums import EventType
from app.core.events import UserEvent
from app.core.weights import EventWeights, event_weight

pytestmark = pytest.mark.unit

DEFAULTS = {
    "view": 1.0,
    "click": 2.0,
    "add_to_cart": 3.0,
    "remove_from_cart": -1.0,
    "purchase": 5.0,
    "like": 4.0,
    "decision_request": 0.0,
    "dislike": -4.0,
    "offer_impression": 0.0,
    "offer_click": 1.0,
    "offer_accepted": 3.0,
    "offer_dismissed": -1.0,
}


def make(event_type: str, rating: float | None = None) -> UserEvent:
    return UserEvent(
        event_id="e",
        user_id="u",
        type=event_type,
        item_id="i",
        offer_id="o",
        channel="push",
        rating=rating,
        ts=0,
    )


@pytest.mark.parametrize(("event_type", "weight"), sorted(DEFAULTS.items()))
def test_default_weights(event_type: str, weight: float) -> None:
    assert event_weight(make(event_type), EventWeights()) == weight


@pytest.mark.parametrize(("rating", "weight"), [(0.5, -5.0), (3, 0.0), (4, 2.0), (5, 4.0)])
def test_rating_weight_is_two_per_star_above_three(rating: float, weight: float) -> None:
    assert event_weight(make("rating", rating), EventWeights()) == weight


def test_every_event_type_has_a_weight() -> None:
    for event_type in EventType:
        event = make(event_type, 4 if event_type is EventType.RATING else None)
        assert isinstance(event_weight(event, EventWeights()), float)


def test_weights_are_configurable_and_frozen() -> None:
    weights = EventWeights(view=0.5, rating_scale=1.0)
    assert event_weight(make("view"), weights) == 0.5
    assert event_weight(make("rating", 5), weights) == 2.0
    with pytest.raises(ValueError):
        weights.view = 3  # type: ignore[misc]
    with pytest.raises(ValueError):
        EventWeights(unknown=1)  # type: ignore[call-arg]


def test_the_weights_cover_the_event_types_when_they_are_built() -> None:
    EventWeights.check_against(EventType)  # raises otherwise


def test_an_event_type_without_a_weight_stops_start_up_with_its_name() -> None:
    class MoreEvents(StrEnum):
        VIEW = "view"
        SHARE = "share"

    with pytest.raises(ValueError, match="event weights has no entry for share: add one"):
        EventWeights.check_against(MoreEvents)
