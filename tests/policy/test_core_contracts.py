"""The core additions this package relies on: ``decision_request`` and ``transactional``."""

from __future__ import annotations

import json

import pytest

from app.core.catalog_records import decode_offer
from app.core.enums import ITEM_EVENT_TYPES, OFFER_EVENT_TYPES, Channel, EventType
from app.core.errors import EventRejected
from app.core.events import decode_event

pytestmark = pytest.mark.unit


def request(**fields: object) -> bytes:
    body = {"event_id": "e", "user_id": "u1", "type": "decision_request", "ts": 0, **fields}
    return json.dumps(body).encode()


def test_decision_request_needs_a_channel_and_nothing_else() -> None:
    event = decode_event(request(channel="in_app"))
    assert event.type is EventType.DECISION_REQUEST
    assert event.channel is Channel.IN_APP
    assert not event.is_item_event and not event.is_offer_event
    assert EventType.DECISION_REQUEST not in ITEM_EVENT_TYPES | OFFER_EVENT_TYPES


def test_decision_request_without_channel_is_rejected() -> None:
    with pytest.raises(EventRejected, match="channel is required"):
        decode_event(request())


def test_offers_are_marketing_unless_flagged_transactional() -> None:
    assert decode_offer(b'{"offer_id": "o", "title": "t"}').transactional is False
    assert decode_offer(b'{"offer_id": "o", "title": "t", "transactional": true}').transactional
    with pytest.raises(EventRejected):
        decode_offer(b'{"offer_id": "o", "title": "t", "transactional": "yes"}')
