"""Closed vocabularies shared by the contracts: event types and delivery channels."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class EventType(StrEnum):
    """The ``type`` of a :class:`~app.core.events.UserEvent`."""

    VIEW = "view"
    CLICK = "click"
    ADD_TO_CART = "add_to_cart"
    REMOVE_FROM_CART = "remove_from_cart"
    PURCHASE = "purchase"
    LIKE = "like"
    DISLIKE = "dislike"
    RATING = "rating"
    OFFER_IMPRESSION = "offer_impression"
    OFFER_CLICK = "offer_click"
    OFFER_ACCEPTED = "offer_accepted"
    OFFER_DISMISSED = "offer_dismissed"
    DECISION_REQUEST = "decision_request"
    """A channel service asks for offers now (neither an item nor an offer event;
    ``channel`` is required)."""


class Channel(StrEnum):
    """A delivery channel of an offer (and of a next-best-offer message)."""

    EMAIL = "email"
    PUSH = "push"
    SMS = "sms"
    IN_APP = "in_app"
    WEB = "web"


ITEM_EVENT_TYPES: frozenset[EventType] = frozenset(
    {
        EventType.VIEW,
        EventType.CLICK,
        EventType.ADD_TO_CART,
        EventType.REMOVE_FROM_CART,
        EventType.PURCHASE,
        EventType.LIKE,
        EventType.DISLIKE,
        EventType.RATING,
    }
)
"""Event types about an item: ``item_id`` is required."""

OFFER_EVENT_TYPES: frozenset[EventType] = frozenset(
    {
        EventType.OFFER_IMPRESSION,
        EventType.OFFER_CLICK,
        EventType.OFFER_ACCEPTED,
        EventType.OFFER_DISMISSED,
    }
)
"""Event types about an offer: ``offer_id`` is required."""


def require_complete(vocabulary: type[StrEnum], names: Iterable[str], what: str) -> None:
    """Raise ``ValueError`` naming every member of ``vocabulary`` that ``names`` lacks.

    Configuration keyed by a vocabulary (a weight per event type, a consent default per
    channel) calls this when it is built, so a member added without its entry stops the
    worker at start-up with this message instead of failing in the hot path.
    """
    have = set(names)
    missing = [member.value for member in vocabulary if member.value not in have]
    if missing:
        raise ValueError(f"{what} has no entry for {', '.join(missing)}: add one")
