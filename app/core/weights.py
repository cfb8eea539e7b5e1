"""How much each event type moves a profile: the signed weight ``w`` of the update rule."""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, model_validator

from app.core.enums import EventType, require_complete
from app.core.events import UserEvent


class EventWeights(BaseModel):
    """Weights per event type (dimensionless multipliers of a unit item vector).

    Defaults: view 1, click 2, add_to_cart 3, remove_from_cart -1, purchase 5, like 4,
    dislike -4, rating ``(rating - rating_neutral) * rating_scale`` = ``(r - 3) * 2``,
    offer_impression 0, offer_click 1, offer_accepted 3, offer_dismissed -1 (offer events
    are applied to the offer's vector).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    view: float = 1.0
    click: float = 2.0
    add_to_cart: float = 3.0
    remove_from_cart: float = -1.0
    purchase: float = 5.0
    like: float = 4.0
    dislike: float = -4.0
    rating_neutral: float = 3.0
    """The rating that carries no preference (stars)."""
    rating_scale: float = 2.0
    """Weight per star above (or below) :attr:`rating_neutral`."""
    offer_impression: float = 0.0
    offer_click: float = 1.0
    offer_accepted: float = 3.0
    offer_dismissed: float = -1.0
    decision_request: float = 0.0
    """A channel asking for a decision says nothing about taste (default 0)."""

    @model_validator(mode="after")
    def _complete(self) -> Self:
        type(self).check_against(EventType)
        return self

    @classmethod
    def check_against(cls, event_types: type[StrEnum]) -> None:
        """Raise ``ValueError`` unless every one of ``event_types`` has a weight here (a
        rating's weight comes from ``rating_neutral`` and ``rating_scale``)."""
        require_complete(event_types, [*cls.model_fields, EventType.RATING.value], "event weights")


def event_weight(event: UserEvent, weights: EventWeights) -> float:
    """The weight of ``event``; a rating event without a rating weighs 0."""
    if event.type is EventType.RATING:
        if event.rating is None:
            return 0.0
        return (event.rating - weights.rating_neutral) * weights.rating_scale
    return float(getattr(weights, event.type.value))
