"""Cart abandonment timers as pure functions (the worker keeps due times in a sorted set).

``add_to_cart`` of an item (re)starts its timer: due ``delay_ms`` after the event time. A
``purchase`` or ``remove_from_cart`` of the item cancels it. Other events change nothing.
"""

from __future__ import annotations

from app.core.enums import EventType
from app.core.events import UserEvent

CANCELLING_TYPES = frozenset({EventType.PURCHASE, EventType.REMOVE_FROM_CART})
"""Event types that cancel the timer of their item."""


def on_add_to_cart(item_id: str, ts_ms: int, delay_ms: int) -> int:
    """The due time (epoch ms, event time) of the timer of ``item_id`` added at ``ts_ms``."""
    if not item_id:
        raise ValueError("item_id must not be empty")
    if delay_ms < 0:
        raise ValueError(f"delay_ms must be >= 0, got {delay_ms}")
    return ts_ms + delay_ms


def starts_timer(event: UserEvent) -> bool:
    """Whether ``event`` starts (or restarts) a cart timer: an ``add_to_cart``."""
    return event.type is EventType.ADD_TO_CART and event.item_id is not None


def cancelled_by(event: UserEvent) -> set[str]:
    """Item ids whose timers ``event`` cancels: its item for a purchase or removal."""
    if event.type in CANCELLING_TYPES and event.item_id is not None:
        return {event.item_id}
    return set()
