from __future__ import annotations

import json
from typing import Any

import pytest

from app.core.catalog import Catalogue
from app.core.catalog_records import Item, Offer, decode_item, decode_offer
from app.core.enums import Channel
from app.core.errors import EventRejected

pytestmark = pytest.mark.unit


def dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def test_item_decodes_with_defaults() -> None:
    item = decode_item(dumps({"item_id": "i-1", "ignored": True}))
    assert item == Item(item_id="i-1")
    assert item.tags == () and item.vector is None and item.price is None


def test_an_item_is_not_repeatable_unless_it_says_so() -> None:
    assert decode_item(dumps({"item_id": "i"})).repeatable is False
    item = decode_item(dumps({"item_id": "i", "repeatable": True, "restock_days": 7}))
    assert item.repeatable is True and item.restock_days == 7.0
    offer = decode_offer(dumps({"offer_id": "o", "title": "T", "repeatable": True}))
    assert offer.repeatable is True
    assert decode_offer(dumps({"offer_id": "o", "title": "T"})).repeatable is False


def test_item_with_all_fields() -> None:
    item = decode_item(
        dumps({"item_id": "i", "tags": ["a"], "vector": [1, 0.5], "title": "T", "price": 3})
    )
    assert item.vector == (1.0, 0.5)
    assert item.price == 3.0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"item_id": ""}, "SchemaViolation"),
        ({"tags": ["a"]}, "SchemaViolation"),
        ({"item_id": "i", "price": -1}, "SchemaViolation"),
        ({"item_id": "i", "vector": ["1"]}, "SchemaViolation"),
        ({"item_id": "i", "vector": []}, "SchemaViolation"),
        ({"item_id": "i", "schema_version": 3}, "UnsupportedSchemaVersion"),
        ({"item_id": "i", "repeatable": "yes"}, "SchemaViolation"),
        ({"item_id": "i", "repeatable": 1}, "SchemaViolation"),
        ({"item_id": "i", "restock_days": 0}, "SchemaViolation"),
        ({"item_id": "i", "restock_days": 3651}, "SchemaViolation"),
        ({"item_id": "i", "restock_days": "7"}, "SchemaViolation"),
    ],
)
def test_bad_items_are_rejected(body: dict[str, Any], reason: str) -> None:
    with pytest.raises(EventRejected) as info:
        decode_item(dumps(body))
    assert info.value.reason_class == reason


def test_item_decoder_rejects_tombstones_and_garbage() -> None:
    with pytest.raises(EventRejected) as info:
        decode_item(None)
    assert info.value.reason_class == "EmptyValue"
    with pytest.raises(EventRejected) as info:
        decode_item(b"[1]")
    assert info.value.reason_class == "InvalidJson"


def test_offer_decodes_and_normalises_times() -> None:
    offer = decode_offer(
        dumps(
            {
                "offer_id": "o",
                "title": "Deal",
                "item_ids": ["i1"],
                "channels": ["push", "email", "push"],
                "valid_from": "2024-05-01T00:00:00Z",
                "valid_until": 1_714_608_000_000,
                "priority": -2,
                "value": 12.5,
            }
        )
    )
    assert offer.channels == (Channel.PUSH, Channel.EMAIL)
    assert offer.valid_from == 1_714_521_600_000
    assert offer.valid_until == 1_714_608_000_000
    assert offer.priority == -2
    assert offer.value == 12.5


def test_offer_defaults() -> None:
    offer = decode_offer(dumps({"offer_id": "o", "title": "t"}))
    assert offer == Offer(offer_id="o", title="t")
    assert offer.value == 0.0 and offer.priority == 0 and offer.channels == ()


@pytest.mark.parametrize(
    "body",
    [
        {"offer_id": "o"},
        {"offer_id": "o", "title": "t", "valid_from": 10, "valid_until": 9},
        {"offer_id": "o", "title": "t", "priority": 1.5},
        {"offer_id": "o", "title": "t", "priority": True},
        {"offer_id": "o", "title": "t", "value": -1},
        {"offer_id": "o", "title": "t", "channels": ["fax"]},
        {"offer_id": "o", "title": "t", "item_ids": [""]},
        {"offer_id": "o", "title": "t", "valid_until": "tomorrow"},
    ],
)
def test_bad_offers_are_schema_violations(body: dict[str, Any]) -> None:
    with pytest.raises(EventRejected) as info:
        decode_offer(dumps(body))
    assert info.value.reason_class == "SchemaViolation"


def test_empty_window_is_allowed() -> None:
    offer = decode_offer(dumps({"offer_id": "o", "title": "t", "valid_from": 5, "valid_until": 5}))
    assert offer.valid_from == offer.valid_until == 5


def test_the_catalogues_offer_record_keeps_every_field_of_the_offer() -> None:
    from app.core.catalog_records import OfferRecord

    offer = Offer(
        offer_id="o",
        title="Ten percent off",
        item_ids=("i1", "i2"),
        tags=("sale",),
        vector=(1.0, 0.0),
        value=3.5,
        channels=("push", "email"),
        valid_from=1,
        valid_until=2,
        priority=-4,
        repeatable=True,
        transactional=True,
    )
    record = OfferRecord.of(offer)
    assert set(OfferRecord.__struct_fields__) == set(Offer.model_fields)
    assert {f: getattr(record, f) for f in Offer.model_fields} == offer.model_dump()


def test_offers_decoded_apart_share_one_copy_of_each_tag_and_of_their_channel_list() -> None:
    catalogue = Catalogue(dim=8)
    for n in range(2):
        raw = json.dumps({"offer_id": f"o{n}", "title": "t", "tags": ["Music", "kids"],
                          "channels": ["push", "email"]}).encode()  # fmt: skip
        catalogue.upsert_offer(decode_offer(raw))
    snap = catalogue.snapshot()
    a, b = snap.offers
    assert a.tags == b.tags == ("Music", "kids") and a.tags[1] is b.tags[1]
    assert a.channels is b.channels
    # the snapshot's normalised tags too: one string per distinct tag
    assert snap.offer_tags[0] == snap.offer_tags[1] == ("music", "kids")
    assert snap.offer_tags[0][0] is snap.offer_tags[1][0]
