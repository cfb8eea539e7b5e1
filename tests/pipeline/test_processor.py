"""The batch pipeline against the in-memory store twin: effectively-once, dead letters, retries."""

from __future__ import annotations

import json

import pytest

from app.core.catalog import Catalogue
from app.core.catalog_records import Item, Offer
from app.core.dead_letters import HEADER_ERROR_CLASS, HEADER_ORIGINAL_OFFSET
from app.pipeline.processor import BatchProcessor
from app.pipeline.records import InboundRecord
from app.ports import StoreUnavailable, UserWrite
from app.storage.memory_store import MemoryProfileStore
from tests.support.pipeline import deterministic_config
from tests.support.recording import RecordingPublisher

pytestmark = pytest.mark.unit

NOW = 1_700_000_000_000
CFG = deterministic_config(offers_topic="nbo", dead_letter_topic="dlq")


def catalogue() -> Catalogue:
    cat = Catalogue(dim=64)
    for i, tags in enumerate([("sci-fi", "space"), ("romance", "drama"), ("action", "cars")]):
        cat.upsert_item(Item(item_id=f"i{i}", tags=tags))
        cat.upsert_offer(
            Offer(
                offer_id=f"o{i}",
                title=f"Offer {i}",
                item_ids=(f"i{i}",),
                tags=tags,
                value=10.0,
                channels=("web",),
            )
        )
    return cat


def event(
    offset: int,
    user: str = "u1",
    item: str = "i0",
    kind: str = "like",
    event_id: str | None = None,
    partition: int = 0,
) -> InboundRecord:
    body = {
        "event_id": event_id or f"e{offset}",
        "user_id": user,
        "type": kind,
        "item_id": item,
        "ts": NOW + offset,
    }
    return InboundRecord("events", partition, offset, user.encode(), json.dumps(body).encode())


def make() -> tuple[BatchProcessor, MemoryProfileStore, RecordingPublisher]:
    store = MemoryProfileStore()
    publisher = RecordingPublisher()
    return BatchProcessor(store, publisher, catalogue(), CFG, lambda: NOW), store, publisher


async def test_events_build_a_profile_and_publish_ranked_offers_keyed_by_user() -> None:
    processor, store, publisher = make()
    stats = await processor.process([event(0), event(1, item="i0"), event(2, user="u2", item="i1")])

    assert (stats.applied, stats.published, stats.dead_lettered) == (3, 2, 0)
    offers = {r.key: json.loads(r.value or b"") for r in publisher.on("nbo")}
    assert offers[b"u1"]["offers"][0]["offer_id"] == "o0"
    assert offers[b"u2"]["offers"][0]["offer_id"] == "o1"
    assert offers[b"u1"]["trigger"]["event_id"] == "e1"
    stored = (await store.load(["u1"]))["u1"]
    assert stored.profile is not None and stored.profile.n_events == 2
    assert stored.offers_json == publisher.on("nbo")[0].value


async def test_a_redelivered_batch_changes_nothing_and_republishes_the_same_message() -> None:
    processor, store, publisher = make()
    batch = [event(0), event(1), event(2)]
    await processor.process(batch)
    first = publisher.on("nbo")[0]

    stats = await processor.process(batch)

    assert (stats.applied, stats.duplicates) == (0, 3)
    assert stats.published == 0 and stats.republished == 1
    again = publisher.on("nbo")[1]
    assert again.value == first.value  # same message_id, same content
    stored = (await store.load(["u1"]))["u1"]
    assert stored.profile is not None and stored.profile.n_events == 3


async def test_a_batch_overlapping_applied_offsets_applies_only_the_new_events() -> None:
    processor, store, _ = make()
    await processor.process([event(0), event(1)])

    stats = await processor.process([event(1), event(2), event(3)])

    assert (stats.applied, stats.duplicates) == (2, 1)
    stored = (await store.load(["u1"]))["u1"]
    assert stored.profile is not None and stored.profile.n_events == 4


async def test_a_duplicate_event_id_at_a_new_offset_is_counted_once() -> None:
    processor, store, _ = make()
    stats = await processor.process([event(0, event_id="same"), event(1, event_id="same")])

    assert (stats.applied, stats.duplicates) == (1, 1)
    stored = (await store.load(["u1"]))["u1"]
    assert stored.profile is not None and stored.profile.n_events == 1


async def test_bad_records_go_to_the_dead_letter_topic_with_reasons_and_the_rest_proceeds() -> None:
    processor, _, publisher = make()
    hostile = json.dumps(
        {"event_id": "h", "user_id": "a b}", "type": "view", "item_id": "i0", "ts": NOW}
    ).encode()
    records = [
        InboundRecord("events", 0, 10, b"k1", b"{not json"),
        InboundRecord("events", 0, 11, b"k2", hostile),
        InboundRecord("events", 0, 12, b"k3", b"x" * 70_000),
        InboundRecord("events", 0, 13, b"k4", None),
        event(14),
    ]

    stats = await processor.process(records)

    dead = publisher.on("dlq")
    assert stats.dead_lettered == 4 and stats.applied == 1
    assert [r.key for r in dead] == [b"k1", b"k2", b"k3", b"k4"]
    assert [r.value for r in dead] == [rec.value for rec in records[:4]]
    classes = [dict(r.headers)[HEADER_ERROR_CLASS].decode() for r in dead]
    assert classes == ["InvalidJson", "SchemaViolation", "ValueTooLarge", "EmptyValue"]
    assert dict(dead[0].headers)[HEADER_ORIGINAL_OFFSET] == b"10"
    assert len(publisher.on("nbo")) == 1


async def test_an_unavailable_store_raises_and_the_same_batch_succeeds_later() -> None:
    processor, store, publisher = make()
    store.available = False
    with pytest.raises(StoreUnavailable):
        await processor.process([event(0), event(1)])
    assert publisher.records == []

    store.available = True
    stats = await processor.process([event(0), event(1)])
    assert stats.applied == 2 and stats.published == 1


async def test_a_failed_publish_is_recovered_by_reprocessing_the_batch() -> None:
    processor, store, publisher = make()
    publisher.fail = True
    with pytest.raises(ConnectionError):
        await processor.process([event(0), event(1)])

    publisher.fail = False
    stats = await processor.process([event(0), event(1)])

    assert stats.applied == 0 and stats.republished == 1
    stored = (await store.load(["u1"]))["u1"]
    assert publisher.on("nbo")[0].value == stored.offers_json


async def test_a_concurrent_write_is_detected_and_the_user_is_reread() -> None:
    processor, store, _ = make()
    await processor.process([event(0)])
    stored = (await store.load(["u1"]))["u1"]
    assert stored.profile is not None
    # another worker (e.g. during a rebalance) applied offset 1 meanwhile
    other = BatchProcessor(store, RecordingPublisher(), catalogue(), CFG, lambda: NOW)
    await other.process([event(1)])

    stats = await processor.process([event(1), event(2)])

    assert stats.conflicts == 1
    assert (stats.applied, stats.duplicates) == (1, 1)
    final = (await store.load(["u1"]))["u1"]
    assert final.profile is not None and final.profile.n_events == 3


async def test_purchased_items_are_never_offered_again() -> None:
    processor, _, publisher = make()
    await processor.process([event(0, item="i0", kind="purchase")])

    offered = [o["offer_id"] for o in json.loads(publisher.on("nbo")[0].value or b"")["offers"]]
    assert "o0" not in offered and offered


async def test_new_and_cached_users_cost_one_store_round_trip_per_batch() -> None:
    processor, store, _ = make()
    await processor.process([event(0), event(1, user="u2")])
    assert store.round_trips == 1  # new users: written optimistically, no read

    await processor.process([event(2), event(3, user="u2")])
    assert store.round_trips == 2  # cached users: the commit only


async def test_a_stored_user_missing_from_the_cache_is_redone_with_the_returned_state() -> None:
    processor, store, _ = make()
    await processor.process([event(0), event(1)])
    processor.forget_cached_users()  # e.g. after a rebalance or a restart
    trips = store.round_trips

    stats = await processor.process([event(1), event(2)])

    assert store.round_trips == trips + 2  # a failed write returning the state, then the write
    assert (stats.conflicts, stats.applied, stats.duplicates) == (1, 1, 1)
    stored = (await store.load(["u1"]))["u1"]
    assert stored.profile is not None and stored.profile.n_events == 3


async def test_unchanged_ranking_publishes_nothing() -> None:
    processor, _, publisher = make()
    await processor.process([event(0)])
    await processor.process([event(1)])  # same item again: same top offers
    assert len(publisher.on("nbo")) == 1


async def test_the_memory_store_rejects_a_write_on_a_stale_version() -> None:
    processor, store, _ = make()
    await processor.process([event(0)])
    stored = (await store.load(["u1"]))["u1"]
    assert stored.profile is not None
    outcome = await store.commit([UserWrite("u1", stored.version - 1, stored.profile)])
    assert list(outcome.conflicts) == ["u1"]
    assert outcome.conflicts["u1"].version == stored.version


async def test_a_message_keeps_k_offers_of_its_channel_when_top_offers_mix_channels() -> None:
    cat = Catalogue(dim=64)
    for i in range(12):
        cat.upsert_offer(
            Offer(
                offer_id=f"m{i:02d}",
                title=f"Mixed {i}",
                tags=("sci-fi",),
                value=float(20 - i),
                channels=("web",) if i % 2 else ("in_app",),
            )
        )
    cfg = deterministic_config(offers_topic="nbo", dead_letter_topic="dlq")
    publisher = RecordingPublisher()
    processor = BatchProcessor(MemoryProfileStore(), publisher, cat, cfg, lambda: NOW)

    await processor.process([event(0)])

    message = json.loads(publisher.on("nbo")[0].value or b"")
    assert message["channel"] == "in_app"  # the best offer (m00) allows in_app only
    assert [o["offer_id"] for o in message["offers"]] == ["m00", "m02", "m04", "m06", "m08"]
    assert [o["rank"] for o in message["offers"]] == [1, 2, 3, 4, 5]


async def test_a_cold_user_is_offered_what_others_engage_with() -> None:
    store, publisher = MemoryProfileStore(), RecordingPublisher()
    clock = iter(range(NOW, NOW + 100 * 10_000, 10_000))  # 10 s per batch: refresh each time
    processor = BatchProcessor(store, publisher, catalogue(), CFG, lambda: next(clock))
    crowd = [event(n, user=f"fan{n}", item="i2", kind="purchase") for n in range(5)]
    await processor.process(crowd)

    body = {"event_id": "c1", "user_id": "newbie", "type": "view", "item_id": "?", "ts": NOW}
    cold = InboundRecord("events", 0, 99, b"newbie", json.dumps(body).encode())
    await processor.process([cold])

    message = json.loads(publisher.on("nbo")[-1].value or b"")
    assert message["user_id"] == "newbie"
    top, *rest = message["offers"]
    assert top["offer_id"] == "o2" and top["score_parts"]["popularity"] > 0
    assert all(o["score_parts"]["popularity"] == 0 for o in rest)  # nobody touched them


async def test_one_users_bad_stored_state_dead_letters_their_events_and_the_batch_goes_on() -> None:
    """The profiles of a batch are updated together; a user whose data makes that fail is
    found and isolated (their events dead-lettered), the others are applied."""
    from app.core.profile import Profile

    processor, store, publisher = make()
    outcome = await store.commit([UserWrite("bad", 0, Profile.empty(8))])  # catalogue: 64
    assert not outcome.conflicts
    stats = await processor.process([event(0, user="bad"), event(1, user="u2", item="i1")])

    dead = publisher.on("dlq")
    assert [r.key for r in dead] == [b"bad"]
    assert dict(dead[0].headers or [])[HEADER_ERROR_CLASS] == b"ValueError"
    assert stats.applied == 1
    stored = (await store.load(["u2"]))["u2"]
    assert stored.profile is not None and stored.profile.n_events == 1
