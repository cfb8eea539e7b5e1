from __future__ import annotations

import json

import pytest

from app.core.decoding import MAX_MESSAGE_CHARS
from app.core.errors import EventRejected, RejectReason
from app.core.events import decode_event

pytestmark = pytest.mark.unit


def test_rejection_carries_class_and_message() -> None:
    err = EventRejected(RejectReason.INVALID_JSON, "bad")
    assert err.reason_class == "InvalidJson"
    assert type(err.reason_class) is str
    assert err.message == "bad"
    assert str(err) == "InvalidJson: bad"


def test_violation_message_lists_every_failing_location() -> None:
    raw = json.dumps({"event_id": "", "user_id": "a b", "type": "nope", "ts": "x"}).encode()
    with pytest.raises(EventRejected) as info:
        decode_event(raw)
    message = info.value.message
    for loc in ("event_id:", "user_id:", "type:", "ts:"):
        assert loc in message
    assert "Value error" not in message


def test_violation_message_is_bounded_and_does_not_echo_input() -> None:
    secret = "s3cr3t-" + "z" * 50
    body: dict[str, object] = {f"k{i}": 0 for i in range(40)}
    body.update(
        {
            "event_id": 1,
            "user_id": secret + " !",
            "type": 2,
            "ts": secret,
            "tags": list(range(200)),
        }
    )
    with pytest.raises(EventRejected) as info:
        decode_event(json.dumps(body).encode())
    assert info.value.reason_class == "SchemaViolation"
    assert len(info.value.message) <= MAX_MESSAGE_CHARS
    assert secret not in info.value.message
