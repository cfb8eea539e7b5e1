from __future__ import annotations

import json

import pytest

from app.core.decoding import MAX_MESSAGE_CHARS, duplicate_key
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


BASE = b'{"event_id":"e1","user_id":"alice","type":"like","item_id":"i1","ts":1764800000000'


@pytest.mark.parametrize(
    "tail",
    [
        b',"user_id":"bob"}',  # the plain case: which user is it?
        b',"user\\u005fid":"bob"}',  # the same key spelled with an escape
        b',"context":{"tz":"UTC","tz":"Asia/Tokyo"}}',  # inside a nested object
        b', "user_id" :"bob"}',  # whitespace before the colon
        b',"user_id"\n:"bob"}',
        b',"x":1,"x":2}',  # even a key the model ignores: producers and we must agree
    ],
    ids=["plain", "escaped", "nested", "space", "newline", "unknown-field"],
)
def test_an_object_with_a_duplicate_key_is_rejected_however_it_is_spelled(tail: bytes) -> None:
    with pytest.raises(EventRejected) as caught:
        decode_event(BASE + tail)
    assert caught.value.reason_class == RejectReason.INVALID_JSON.value
    assert "duplicate key" in caught.value.message


@pytest.mark.parametrize(
    "tail",
    [
        b',"context":{"type":"page","user_id":"shown"}}',  # the same names in another object
        b', "note": "a\\":b", "context": {"a": 1, "b": "x"}, "tags": ["a"]}',  # escapes
        b',"tags":["a","a"]}',  # repeated values are not keys
        b', "note": "user_id\\":\\"bob"}',  # a value that looks like a key
        b"}",
    ],
    ids=["other-object", "escapes", "repeated-values", "key-like-value", "plain"],
)
def test_the_same_name_in_different_objects_or_in_values_is_not_a_duplicate(tail: bytes) -> None:
    assert decode_event(BASE + tail).user_id == "alice"


def test_objects_inside_lists_are_checked_each_on_its_own() -> None:
    assert duplicate_key(b'{"a":[{"x":1},{"x":2}],"b":[[{"x":3}]]}') is None
    assert duplicate_key(b'{"a":[{"x":1},{"y":2,"y":3}]}') == "y"
    assert duplicate_key(b'{"a":[[{"z":1,"z":1}]]}') == "z"
    assert duplicate_key(b"not json") is None  # the model's parser reports that
