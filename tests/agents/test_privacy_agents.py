"""The consent and privacy-request agents through faust's test_context: no broker, the
in-memory user-admin twin."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from agents.app import build_worker
from agents.consent import AGENT_NAME as CONSENT_AGENT
from agents.consent import register_consent_agent
from agents.privacy import AGENT_NAME as PRIVACY_AGENT
from agents.privacy import register_privacy_agent
from agents.worker import Worker
from app.core.catalog_records import Offer
from app.core.dead_letters import HEADER_ERROR_CLASS, HEADER_ORIGINAL_TOPIC
from app.core.profile import Profile
from app.core.vectors import hash_tags
from app.settings import Settings
from app.storage.memory_user_admin import MemoryUserAdmin
from app.storage.profile_codec import profile_fields
from app.storage.user_admin import user_admin_config
from tests.agents.test_event_agent import eventually
from tests.pipeline.test_processor import RecordingPublisher

pytestmark = pytest.mark.agents

Built = tuple[Worker, MemoryUserAdmin, RecordingPublisher]


@pytest.fixture
async def worker() -> AsyncIterator[Built]:
    settings = Settings(
        kafka_bootstrap="127.0.0.1:1",
        batch_size=10,
        control_within_s=0.02,
        web_port=16998,
        user_events_partitions=3,
    )
    built = build_worker(settings)
    built.catalogue.upsert_offer(
        Offer(offer_id="o1", title="Space", tags=("sci-fi", "space"), channels=("web",))
    )
    built.catalogue.upsert_offer(
        Offer(offer_id="o2", title="Love", tags=("romance",), channels=("web",))
    )
    admin, publisher = MemoryUserAdmin(user_admin_config(settings)), RecordingPublisher()
    register_consent_agent(built, admin=admin, publisher=publisher)
    register_privacy_agent(built, admin=admin, publisher=publisher)
    built.feed.ready.set()
    built.app.finalize()
    built.app.flow_control.resume()
    yield built, admin, publisher
    await built.redis.aclose()


def consent_json(user: str, ts: int, objection: bool = False) -> bytes:
    body = {"user_id": user, "channels": {"web": True}, "objection": objection, "ts": ts}
    return json.dumps(body).encode()


def privacy_json(user: str, kind: str, request_id: str = "r1") -> bytes:
    body = {"request_id": request_id, "user_id": user, "kind": kind, "ts": 1_000}
    return json.dumps(body).encode()


def seed(admin: MemoryUserAdmin, user: str) -> None:
    """A profile interested in sci-fi and space, offers, and a cart-timer entry."""
    keys = admin.config.keys(user)
    vec = hash_tags(["sci-fi", "space"], admin.config.dim)
    assert vec is not None
    stored = Profile(
        vec=vec, t_ref_ms=1, n_events=2, updated_at_ms=5, offsets={}, recent_event_ids=()
    )
    admin.keyspace[keys.profile] = {k.encode(): v for k, v in profile_fields(stored)}
    admin.keyspace[keys.profile][b"ver"] = b"3"
    admin.keyspace[keys.offers] = b'{"message_id":"m1"}'
    admin.keyspace.setdefault(admin.config.cart_indexes()[1], {})[admin.config.key_id(user)] = 9.0


async def test_consent_records_and_tombstones_apply_and_bad_ones_are_dead_lettered(
    worker: Built,
) -> None:
    built, admin, publisher = worker
    seed(admin, "u1")
    admin.keyspace[admin.config.keys("u2").consent] = consent_json("u2", 5)
    async with built.app.agents[CONSENT_AGENT].test_context() as ctx:
        await ctx.put(consent_json("u1", 100, objection=True), key=b"u1")
        await ctx.put(None, key=b"u2")
        await ctx.put(b"{oops", key=b"bad")
        await ctx.put(consent_json("u3", 100), key=b"someone-else")
        await eventually(lambda: len(publisher.records) >= 2)

    dead = publisher.on(built.settings.topic_dead_letters)
    assert [r.key for r in dead] == [b"bad", b"someone-else"]
    assert [dict(r.headers)[HEADER_ERROR_CLASS] for r in dead] == [
        b"InvalidJson",
        b"SchemaViolation",
    ]
    assert dead[0].value == b"{oops"
    assert (
        dict(dead[0].headers)[HEADER_ORIGINAL_TOPIC] == built.settings.topic_user_consent.encode()
    )
    u1, u2 = admin.config.keys("u1"), admin.config.keys("u2")
    assert admin.keyspace[u1.profile] == {b"ver": b"4"}  # objection: only the bumped version
    assert u1.offers not in admin.keyspace
    # a tombstone for a user without a profile creates no key
    assert u2.consent not in admin.keyspace and u2.profile not in admin.keyspace
    assert admin.config.keys("u3").consent not in admin.keyspace


async def test_the_consent_agent_waits_for_an_unavailable_store_and_loses_nothing(
    worker: Built,
) -> None:
    built, admin, _ = worker
    admin.available = False
    async with built.app.agents[CONSENT_AGENT].test_context() as ctx:
        await ctx.put(consent_json("u1", 100), key=b"u1")
        await eventually(lambda: built.metrics.batch_retries._value.get() >= 2)
        assert admin.keyspace == {}
        admin.available = True
        await eventually(lambda: admin.config.keys("u1").consent in admin.keyspace)

    assert json.loads(admin.keyspace[admin.config.keys("u1").consent])["ts"] == 100


async def test_an_erase_request_deletes_the_user_and_is_audited_with_counts(
    worker: Built,
) -> None:
    built, admin, publisher = worker
    seed(admin, "u1")
    seed(admin, "u2")
    async with built.app.agents[PRIVACY_AGENT].test_context() as ctx:
        await ctx.put(privacy_json("u1", "erase"), key=b"u1")
        await ctx.put(b'{"request_id": "r2"}', key=b"u1")
        await eventually(lambda: len(publisher.records) >= 2)

    (audit,) = publisher.on(built.settings.topic_privacy_audit)
    body = json.loads(audit.value or b"")
    assert audit.key == b"u1"
    assert (body["kind"], body["status"], body["request_id"]) == ("erase", "completed", "r1")
    assert (body["deleted_keys"], body["timers_removed"]) == (2, 1)
    assert not [k for k in admin.keyspace if k.startswith("nbo:{u:u1}")]
    # the marker, outside the user's key space, holds the erasure time the audit reports
    assert [k for k in admin.keyspace if "{u:u1}" in k] == ["nbo:erased:{u:u1}"]
    assert admin.keyspace["nbo:erased:{u:u1}"] == str(body["erased_at"]).encode()
    assert body["erased_at"] >= body["requested_at"]
    assert admin.config.keys("u2").profile in admin.keyspace
    (dead,) = publisher.on(built.settings.topic_dead_letters)
    assert dict(dead.headers)[HEADER_ERROR_CLASS] == b"SchemaViolation"


async def test_an_export_request_publishes_the_profile_vector_and_strongest_tags(
    worker: Built,
) -> None:
    built, admin, publisher = worker
    seed(admin, "u1")
    admin.keyspace[admin.config.keys("u1").policy] = b'{"v":1,"c":{"web":[900]}}'
    async with built.app.agents[PRIVACY_AGENT].test_context() as ctx:
        await ctx.put(privacy_json("u1", "export"), key=b"u1")
        await ctx.put(privacy_json("nobody", "export", "r2"), key=b"nobody")
        await eventually(lambda: len(publisher.records) >= 2)

    audits = {r.key: json.loads(r.value or b"") for r in publisher.records}
    data = audits[b"u1"]["data"]
    assert len(data["profile"]["vector"]) == built.settings.vector_dim
    assert data["profile"]["n_events"] == 2
    assert {t["tag"] for t in data["profile"]["strongest_tags"]} == {"sci-fi", "space"}
    assert data["current_offers"] == {"message_id": "m1"}
    assert data["contact_history"]["contacts"] == {"web": [900]}  # stored short keys spelled out
    assert audits[b"nobody"]["status"] == "completed"
    assert audits[b"nobody"]["data"]["profile"] is None


async def test_an_erase_reports_what_it_deleted_even_when_publishing_had_to_be_retried(
    worker: Built,
) -> None:
    built, admin, publisher = worker
    seed(admin, "u1")
    publisher.fail = True
    async with built.app.agents[PRIVACY_AGENT].test_context() as ctx:
        await ctx.put(privacy_json("u1", "erase"), key=b"u1")
        await eventually(lambda: built.metrics.batch_retries._value.get() >= 2)
        publisher.fail = False
        await eventually(lambda: len(publisher.records) >= 1)

    (audit,) = publisher.on(built.settings.topic_privacy_audit)
    assert json.loads(audit.value or b"")["deleted_keys"] == 2
