"""Hostile input in the pipeline: a record dated far ahead of the worker's clock is dead-lettered
and leaves no trace (old records are applied without moving state back); an event keyed by
another user is dead-lettered; the popularity prior counts each applied event once and only
catalogue items.

The attacks of the review, in process: an event at year 9999 that froze a profile's decay, a
consent record at year 9999 that made every later change (objection included) look stale, a
privacy request from the future.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.core.catalog import Catalogue
from app.core.dead_letters import HEADER_ERROR_CLASS
from app.core.errors import EventRejected
from app.core.timestamps import MAX_TS_MS, check_not_ahead
from app.pipeline.config import MAX_AHEAD_MS
from app.pipeline.consent import ConsentHandler
from app.pipeline.privacy import PrivacyHandler
from app.pipeline.processor import BatchProcessor
from app.pipeline.records import InboundRecord
from app.storage.memory_store import MemoryProfileStore
from app.storage.memory_user_admin import MemoryUserAdmin
from tests.pipeline.test_processor import NOW, catalogue
from tests.support.pipeline import deterministic_config
from tests.support.recording import RecordingPublisher

pytestmark = pytest.mark.unit

CFG = deterministic_config(offers_topic="nbo", dead_letter_topic="dlq", decisions_topic="dec")
YEAR_9999 = MAX_TS_MS


def record(offset: int, body: dict[str, object], topic: str = "events") -> InboundRecord:
    key = str(body["user_id"]).encode()
    return InboundRecord(topic, 0, offset, key, json.dumps(body).encode())


def like(offset: int, ts: int, item: str = "i0", user: str = "u1") -> InboundRecord:
    return record(offset, {"event_id": f"e{offset}", "user_id": user, "type": "like",
                           "item_id": item, "ts": ts})  # fmt: skip


def test_a_time_within_the_skew_passes_and_one_beyond_is_rejected() -> None:
    check_not_ahead(NOW + MAX_AHEAD_MS, NOW, MAX_AHEAD_MS)
    with pytest.raises(EventRejected) as caught:
        check_not_ahead(NOW + MAX_AHEAD_MS + 1, NOW, MAX_AHEAD_MS)
    assert caught.value.reason_class == "FutureTimestamp"
    assert MAX_AHEAD_MS == 900_000  # the documented default, 15 minutes


async def test_an_event_from_year_9999_is_dead_lettered_and_the_profile_keeps_learning() -> None:
    store, publisher = MemoryProfileStore(), RecordingPublisher()
    processor = BatchProcessor(store, publisher, catalogue(), CFG, lambda: NOW)
    await processor.process([like(0, NOW - 60_000), like(1, YEAR_9999, item="i1")])

    (letter,) = publisher.on("dlq")
    assert (letter.value, dict(letter.headers)[HEADER_ERROR_CLASS]) == (
        like(1, YEAR_9999, item="i1").value,
        b"FutureTimestamp",
    )
    profile = (await store.load(["u1"]))["u1"].profile
    assert profile is not None and (profile.n_events, profile.t_ref_ms) == (1, NOW - 60_000)

    # genuine events keep moving the profile (with the year-9999 event they weighed nothing)
    before = profile.vec.copy()
    await processor.process([like(2, NOW, item="i1")])
    after = (await store.load(["u1"]))["u1"].profile
    assert after is not None and after.n_events == 2
    assert not np.allclose(before, after.vec)


async def test_old_events_are_applied_without_moving_the_reference_time_back() -> None:
    store = MemoryProfileStore()
    processor = BatchProcessor(store, RecordingPublisher(), catalogue(), CFG, lambda: NOW)
    await processor.process([like(0, NOW)])
    await processor.process([like(1, NOW - 400 * 86_400_000, item="i1")])  # a year ago
    profile = (await store.load(["u1"]))["u1"].profile
    assert profile is not None and (profile.n_events, profile.t_ref_ms) == (2, NOW)
    assert [eid for eid, _ in profile.recent_event_ids] == ["e0"]  # the old id did not push e0


def consent(offset: int, ts: int, objection: bool = False) -> InboundRecord:
    body = {"user_id": "u1", "channels": {"email": True}, "objection": objection, "ts": ts}
    return record(offset, body, topic="user-consent")


async def test_a_consent_record_from_year_9999_cannot_lock_consent() -> None:
    admin, publisher = MemoryUserAdmin(), RecordingPublisher()
    handler = ConsentHandler(admin, publisher, "dlq", clock=lambda: NOW)
    batch = await handler.handle([consent(0, YEAR_9999), consent(1, NOW, objection=True)])

    assert (batch.applied, batch.stale, batch.dead_lettered) == (1, 0, 1)
    (letter,) = publisher.on("dlq")
    assert dict(letter.headers)[HEADER_ERROR_CLASS] == b"FutureTimestamp"
    stored = json.loads(admin.keyspace[admin.config.keys("u1").consent])
    assert (stored["objection"], stored["ts"]) == (True, NOW)  # the real objection stands


async def test_a_privacy_request_from_the_future_is_dead_lettered() -> None:
    admin, publisher = MemoryUserAdmin(), RecordingPublisher()
    handler = PrivacyHandler(admin, publisher, catalogue(), "audit", "dlq", clock=lambda: NOW)
    body = {"schema_version": 1, "request_id": "r1", "user_id": "u1", "kind": "erase",
            "ts": NOW + 2 * MAX_AHEAD_MS}  # fmt: skip
    assert await handler.handle([record(0, body, topic="privacy-requests")], {}) == 1
    assert [dict(r.headers)[HEADER_ERROR_CLASS] for r in publisher.on("dlq")] == [
        b"FutureTimestamp"
    ]
    assert publisher.on("audit") == []


async def test_an_event_keyed_by_another_user_is_dead_lettered() -> None:
    store, publisher = MemoryProfileStore(), RecordingPublisher()
    processor = BatchProcessor(store, publisher, catalogue(), CFG, lambda: NOW)
    body = {"event_id": "e1", "user_id": "u1", "type": "like", "item_id": "i0", "ts": NOW}
    await processor.process([InboundRecord("events", 0, 0, b"u2", json.dumps(body).encode())])
    (letter,) = publisher.on("dlq")
    assert dict(letter.headers)[HEADER_ERROR_CLASS] == b"SchemaViolation"
    assert (await store.load(["u1", "u2"]))["u1"].profile is None


async def test_an_event_with_a_duplicate_user_id_is_dead_lettered_and_the_rest_applied() -> None:
    store, publisher = MemoryProfileStore(), RecordingPublisher()
    processor = BatchProcessor(store, publisher, catalogue(), CFG, lambda: NOW)
    twice = (
        b'{"event_id":"e1","user_id":"u1","type":"purchase","item_id":"i0",'
        b'"ts":%d,"user\\u005fid":"u2"}' % NOW
    )
    await processor.process([InboundRecord("events", 0, 0, b"u2", twice), like(1, NOW, user="u3")])
    (letter,) = publisher.on("dlq")
    assert dict(letter.headers)[HEADER_ERROR_CLASS] == b"InvalidJson"
    assert letter.value == twice
    stored = await store.load(["u1", "u2", "u3"])
    assert stored["u1"].profile is None and stored["u2"].profile is None
    assert stored["u3"].profile is not None


def popularity(processor: BatchProcessor, cat: Catalogue) -> dict[str, float]:
    snap = cat.snapshot()
    return dict(zip(snap.offer_ids, snap.popularity.tolist(), strict=True))


async def test_the_popularity_prior_counts_each_event_once_and_only_catalogue_items() -> None:
    cat = catalogue()
    clock = [NOW]
    processor = BatchProcessor(MemoryProfileStore(), RecordingPublisher(), cat, CFG,
                               lambda: clock[0])  # fmt: skip
    await processor.process([like(0, NOW, "i0", "u1"), like(1, NOW, "i0", "u2")])
    once = [like(2, NOW, "i1", "u3")]
    await processor.process(once)
    await processor.process(once)  # redelivered: applied once, counted once
    unknown = record(
        3,
        {
            "event_id": "e3",
            "user_id": "u4",
            "type": "like",
            "item_id": "not-in-catalogue",
            "tags": ["sci-fi"] * 32,
            "ts": NOW,
        },
    )
    await processor.process([unknown])  # fmt: skip
    clock[0] += CFG.popularity_refresh_ms
    await processor.process([like(4, clock[0], "i2", "u5")])  # the refresh comes first
    prior = popularity(processor, cat)
    assert prior["o0"] == pytest.approx(1.0)
    assert prior["o1"] == pytest.approx(0.5, rel=1e-3)  # not 1.0: the redelivery did not count
    assert prior["o2"] == 0.0  # observed after this batch's refresh
