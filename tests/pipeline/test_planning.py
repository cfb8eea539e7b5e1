"""The planner's reading of what a user has stored."""

from __future__ import annotations

import pytest

from app.pipeline.planning import stored_offers

pytestmark = pytest.mark.unit


def test_the_stored_message_gives_its_offer_ids_and_trigger_whatever_else_it_holds() -> None:
    message = (
        b'{"schema_version":1,"message_id":"m","user_id":"u","channel":"push",'
        b'"offers":[{"offer_id":"o2","rank":1,"score":0.5,"score_parts":{},"reason":"r"},'
        b'{"offer_id":"o1","rank":2,"score":0.4,"score_parts":{},"reason":"r","match":3.5}],'
        b'"trigger":{"event_id":"e9","type":"view"},"generated_at":1,"expires_at":2,'
        b'"model":{"vector_dim":8,"version":"v"},"group":"control","new_field":[1,2]}'
    )
    assert stored_offers(message) == (["o2", "o1"], "e9")
    assert stored_offers(b'{"offers":[]}') == ([], None)
    assert stored_offers(None) == ([], None) and stored_offers(b"") == ([], None)


def test_a_stored_message_of_another_shape_is_read_as_json_and_garbage_refused() -> None:
    assert stored_offers(b'{"offers":[{"offer_id":"o1"}],"trigger":{"event_id":7}}') == (
        ["o1"],
        7,
    )
    with pytest.raises(ValueError):
        stored_offers(b"{not json")
