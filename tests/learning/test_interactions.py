"""The columnar interaction log."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.enums import EventType
from app.core.events import UserEvent
from app.learning.interactions import InteractionLog
from tests.support.planted import T0

pytestmark = pytest.mark.unit


def _event(eid: str, user: str, kind: str, ts: int, **extra: object) -> UserEvent:
    return UserEvent.model_validate(
        {"event_id": eid, "user_id": user, "type": kind, "ts": ts, **extra}
    )


def test_from_events_keeps_item_events_in_time_order_with_engine_weights() -> None:
    events = [
        _event("e1", "b", "rating", T0 + 2, item_id="x", rating=5.0),
        _event("e2", "a", "view", T0 + 2, item_id="y"),
        _event("e3", "a", "offer_click", T0 + 1, offer_id="o"),
        _event("e4", "a", "purchase", T0, item_id="x"),
    ]
    log = InteractionLog.from_events(events, item_ids=["z"])
    assert log.event_ids == ("e4", "e2", "e1")  # by time, then by user id
    assert log.item_ids[0] == "z"
    assert log.weight.tolist() == [5.0, 1.0, 4.0]
    assert [log.user_ids[u] for u in log.user] == ["a", "a", "b"]
    assert np.isnan(log.rating[0]) and log.rating[2] == 5.0


def test_positives_are_likes_purchases_and_good_ratings() -> None:
    log = InteractionLog.from_columns(
        users=["u"] * 5,
        items=["a", "b", "c", "d", "e"],
        ts_ms=[T0 + k for k in range(5)],
        types=[EventType.LIKE, EventType.PURCHASE, EventType.RATING, EventType.RATING,
               EventType.VIEW],
        ratings=[None, None, 4.0, 3.5, None],
    )  # fmt: skip
    assert log.positives().tolist() == [True, True, True, False, False]
    assert log.positives(min_rating=3.5).tolist() == [True, True, True, True, False]


def test_subset_keeps_the_vocabularies() -> None:
    log = InteractionLog.from_columns(
        ["a", "b"], ["x", "y"], [T0, T0 + 1], [EventType.VIEW, EventType.CLICK]
    )
    sub = log.subset(np.array([False, True]))
    assert len(sub) == 1
    assert sub.item_ids == log.item_ids and sub.user_ids == log.user_ids
    assert sub.event_ids == ("e1",)
    assert sub.weight.tolist() == [2.0]
