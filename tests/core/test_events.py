from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.enums import ITEM_EVENT_TYPES, OFFER_EVENT_TYPES, Channel, EventType
from app.core.errors import EventRejected, RejectReason
from app.core.events import UserEvent, decode_event

pytestmark = pytest.mark.unit

MakeJson = Callable[..., bytes]
T0 = 1_714_564_800_000


def reject(raw: bytes | None, **kwargs: Any) -> EventRejected:
    with pytest.raises(EventRejected) as info:
        decode_event(raw, **kwargs)
    return info.value


def test_valid_event_decodes_with_defaults(make_event_json: MakeJson) -> None:
    event = decode_event(make_event_json())
    assert event.schema_version == 1
    assert event.type is EventType.VIEW
    assert event.item_id == "item-1"
    assert event.ts_ms == T0
    assert event.tags == ()
    assert event.context is None


@pytest.mark.parametrize("raw", [None, b""])
def test_missing_value_is_empty_value(raw: bytes | None) -> None:
    assert reject(raw).reason_class == RejectReason.EMPTY_VALUE


def test_value_over_the_limit_is_too_large(make_event_json: MakeJson) -> None:
    raw = make_event_json(tags=["x" * 100] * 10)
    assert reject(raw, max_bytes=len(raw) - 1).reason_class == "ValueTooLarge"
    assert decode_event(raw, max_bytes=len(raw)).tags[0] == "x" * 100


def test_default_limit_is_64_kib(make_event_json: MakeJson) -> None:
    raw = make_event_json(pad="y" * 70_000)
    assert reject(raw).reason_class == "ValueTooLarge"


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfe{}",
        b'{"event_id": "\xff"}',
        b"{not json",
        b"   ",
        b'{"a": 1} trailing',
        b'{"a": "\\ud800"}',
    ],
)
def test_undecodable_bytes_are_invalid_json(raw: bytes) -> None:
    assert reject(raw).reason_class == "InvalidJson"


@pytest.mark.parametrize("raw", [b"[]", b"[1, 2]", b'"event"', b"42", b"null", b"true"])
def test_json_that_is_not_an_object_is_invalid_json(raw: bytes) -> None:
    rejected = reject(raw)
    assert rejected.reason_class == "InvalidJson"
    assert "object" in rejected.message


@pytest.mark.parametrize("version", [0, 2, 99])
def test_other_schema_versions_are_unsupported(make_event_json: MakeJson, version: int) -> None:
    rejected = reject(make_event_json(schema_version=version))
    assert rejected.reason_class == "UnsupportedSchemaVersion"
    assert str(version) in rejected.message


def test_unsupported_version_wins_over_other_violations() -> None:
    assert reject(b'{"schema_version": 2}').reason_class == "UnsupportedSchemaVersion"


@pytest.mark.parametrize("version", ["1", True, 1.0])
def test_schema_version_of_the_wrong_type_is_a_violation(
    make_event_json: MakeJson, version: object
) -> None:
    assert reject(make_event_json(schema_version=version)).reason_class == "SchemaViolation"


@pytest.mark.parametrize(
    "user_id",
    [
        "a b",
        "x{y}",
        "../..",
        "a/b",
        "u" * 129,
        "",
        "caf\u00e9",
        "\U0001f600",
        "abc\n",
        "a\x00b",
        "key*",
        "user#1",
    ],
)
def test_hostile_user_ids_are_rejected(make_event_json: MakeJson, user_id: str) -> None:
    rejected = reject(make_event_json(user_id=user_id))
    assert rejected.reason_class == "SchemaViolation"
    assert "user_id" in rejected.message


@pytest.mark.parametrize("user_id", ["u", "user:42@example.com", "a.b-c_d", "U" * 128, "0"])
def test_key_safe_user_ids_are_accepted(make_event_json: MakeJson, user_id: str) -> None:
    assert decode_event(make_event_json(user_id=user_id)).user_id == user_id


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("event_id", ""),
        ("event_id", "e" * 129),
        ("event_id", 17),
        ("item_id", ""),
        ("item_id", 5),
        ("type", "VIEW"),
        ("type", "checkout"),
        ("ts", 1.7e12),
        ("ts", True),
        ("ts", "2024-05-01T12:00:00"),
        ("ts", "yesterday"),
        ("value", -0.01),
        ("value", "10"),
        ("value", True),
        ("channel", "fax"),
        ("tags", "sci-fi"),
        ("tags", [1, 2]),
        ("context", {"k": [1]}),
        ("context", {"k": {"nested": 1}}),
        ("context", {f"k{i}": i for i in range(33)}),
    ],
)
def test_wrong_types_and_values_are_schema_violations(
    make_event_json: MakeJson, field: str, value: object
) -> None:
    rejected = reject(make_event_json(**{field: value}))
    assert rejected.reason_class == "SchemaViolation"
    assert field in rejected.message


@pytest.mark.parametrize("field", ["event_id", "user_id", "type", "ts"])
def test_required_fields_are_required(make_event_json: MakeJson, field: str) -> None:
    rejected = reject(make_event_json(**{field: None}))
    assert rejected.reason_class == "SchemaViolation"
    assert field in rejected.message


@pytest.mark.parametrize("event_type", sorted(ITEM_EVENT_TYPES))
def test_item_events_require_an_item_id(make_event_json: MakeJson, event_type: str) -> None:
    rejected = reject(make_event_json(type=event_type, item_id=None, rating=4))
    assert rejected.reason_class == "SchemaViolation"
    assert "item_id is required" in rejected.message


@pytest.mark.parametrize("event_type", sorted(OFFER_EVENT_TYPES))
def test_offer_events_require_an_offer_id(make_event_json: MakeJson, event_type: str) -> None:
    rejected = reject(make_event_json(type=event_type, item_id=None))
    assert "offer_id is required" in rejected.message
    event = decode_event(make_event_json(type=event_type, item_id=None, offer_id="o-1"))
    assert event.offer_id == "o-1"
    assert event.is_offer_event and not event.is_item_event


def test_rating_events_require_a_rating_in_range(make_event_json: MakeJson) -> None:
    assert "rating is required" in reject(make_event_json(type="rating")).message
    for bad in (0.4, 5.01, "4", True):
        assert reject(make_event_json(type="rating", rating=bad)).reason_class == (
            "SchemaViolation"
        )
    assert decode_event(make_event_json(type="rating", rating=0.5)).rating == 0.5
    assert decode_event(make_event_json(type="rating", rating=5)).rating == 5.0


def test_unknown_fields_are_ignored(make_event_json: MakeJson) -> None:
    event = decode_event(make_event_json(new_field={"x": [1, 2]}, another=None, v2_hint="yes"))
    assert event.event_id == "e-1"
    assert not hasattr(event, "new_field")


def test_optional_fields_decode(make_event_json: MakeJson) -> None:
    event = decode_event(
        make_event_json(
            type="purchase",
            value=19.99,
            channel="in_app",
            tags=["Sci-Fi", "space"],
            context={"page": "home", "pos": 3, "score": 0.5, "ab": True},
        )
    )
    assert event.value == 19.99
    assert event.channel is Channel.IN_APP
    assert event.tags == ("Sci-Fi", "space")
    assert event.context == {"page": "home", "pos": 3, "score": 0.5, "ab": True}


def test_null_tags_mean_no_tags(make_event_json: MakeJson) -> None:
    raw = json.dumps({**json.loads(make_event_json()), "tags": None}).encode()
    assert decode_event(raw).tags == ()


def test_rfc3339_and_epoch_ms_give_the_same_ts_ms(make_event_json: MakeJson) -> None:
    as_text = decode_event(make_event_json(ts="2024-05-01T14:00:00.000+02:00"))
    as_int = decode_event(make_event_json(ts=T0))
    assert as_text.ts_ms == as_int.ts_ms == T0


def test_event_is_immutable(make_event_json: MakeJson) -> None:
    event = decode_event(make_event_json())
    with pytest.raises(ValueError):
        event.user_id = "other"  # type: ignore[misc]


@given(
    event_id=st.text(min_size=1, max_size=128),
    user_id=st.from_regex(r"\A[A-Za-z0-9._:@-]{1,128}\Z"),
    ts=st.integers(min_value=0, max_value=4_102_444_800_000),
    event_type=st.sampled_from(sorted(ITEM_EVENT_TYPES - {EventType.RATING})),
)
def test_to_json_bytes_round_trips(event_id: str, user_id: str, ts: int, event_type: str) -> None:
    event = UserEvent(event_id=event_id, user_id=user_id, type=event_type, item_id="i", ts=ts)
    assert decode_event(event.to_json_bytes()) == event
