"""Valid JSON that is hostile: each is capped or rejected before it reaches any state."""

from __future__ import annotations

import json

import pytest

from app.core.catalog_records import decode_offer
from app.core.errors import EventRejected
from app.core.events import decode_event
from app.core.fields import MAX_MONEY, MAX_TAG_CHARS, MAX_TAGS
from app.core.privacy import key_user_id
from app.core.timestamps import parse_timestamp

pytestmark = pytest.mark.unit

LIKE = {"event_id": "e1", "user_id": "u1", "type": "like", "item_id": "i1", "ts": 1_700_000_000_000}
OFFER = {"offer_id": "o1", "title": "Offer", "channels": ["web"]}


def rejected(decode: object, doc: dict[str, object]) -> str:
    with pytest.raises(EventRejected) as caught:
        decode(json.dumps(doc).encode())  # type: ignore[operator]
    assert caught.value.reason_class == "SchemaViolation"
    return caught.value.message


def test_an_event_with_too_many_tags_is_rejected_and_one_at_the_limit_is_not() -> None:
    assert len(decode_event(json.dumps({**LIKE, "tags": ["t"] * MAX_TAGS}).encode()).tags) == 32
    assert rejected(decode_event, {**LIKE, "tags": ["t"] * (MAX_TAGS + 1)}).startswith("tags")


def test_a_tag_longer_than_the_limit_is_rejected() -> None:
    assert rejected(decode_event, {**LIKE, "tags": ["x" * (MAX_TAG_CHARS + 1)]}).startswith("tags")
    assert rejected(decode_offer, {**OFFER, "tags": ["x" * (MAX_TAG_CHARS + 1)]}).startswith("tags")


def test_an_absurd_offer_value_is_rejected() -> None:
    assert decode_offer(json.dumps({**OFFER, "value": MAX_MONEY}).encode()).value == MAX_MONEY
    assert rejected(decode_offer, {**OFFER, "value": 1e308}).startswith("value")


@pytest.mark.parametrize("key", [b"alice\n", b"alice\r\n", b" alice", b"al ice"])
def test_a_key_that_is_a_user_id_with_something_more_is_not_a_user_id(key: bytes) -> None:
    with pytest.raises(EventRejected):
        key_user_id(key)
    assert key_user_id(b"alice") == "alice"


@pytest.mark.parametrize(
    "text",
    ["\u0662\u0660\u0662\u0664-05-01T12:00:00Z", "2024-05-01T12:00:00.\u0661\u0662\u0663Z"],
    ids=["arabic-indic-year", "arabic-indic-fraction"],
)
def test_digits_of_other_scripts_are_not_a_timestamp(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text)
    assert parse_timestamp("2024-05-01T12:00:00Z") == 1_714_564_800_000
