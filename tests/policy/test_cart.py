from __future__ import annotations

import pytest

from app.core.events import UserEvent
from app.policy.cart import cancelled_by, on_add_to_cart, starts_timer

pytestmark = pytest.mark.unit


def item_event(kind: str, item_id: str = "i1") -> UserEvent:
    return UserEvent(event_id="e", user_id="u1", type=kind, item_id=item_id, ts=1000)


def test_add_to_cart_is_due_after_the_delay_from_event_time() -> None:
    assert on_add_to_cart("i1", 1000, 3_600_000) == 3_601_000
    assert starts_timer(item_event("add_to_cart"))
    assert not starts_timer(item_event("view"))


def test_invalid_timer_arguments_are_rejected() -> None:
    with pytest.raises(ValueError):
        on_add_to_cart("i1", 0, -1)
    with pytest.raises(ValueError):
        on_add_to_cart("", 0, 1)


@pytest.mark.parametrize(
    ("kind", "cancelled"), [("purchase", {"i7"}), ("remove_from_cart", {"i7"})]
)
def test_purchase_or_removal_cancels_the_items_timer(kind: str, cancelled: set[str]) -> None:
    assert cancelled_by(item_event(kind, "i7")) == cancelled


@pytest.mark.parametrize("kind", ["view", "add_to_cart", "like"])
def test_other_events_cancel_nothing(kind: str) -> None:
    assert cancelled_by(item_event(kind)) == set()
