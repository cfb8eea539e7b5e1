"""A real worker process: consent records applied, users exported and erased on request, with
one privacy-audit record per request, against the real broker and Redis."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from app.core.pseudonym import pseudonymise
from app.storage.keys import cart_due_key, user_keys
from tests.support.barrier import markers_applied, produce_markers
from tests.support.kafka_io import as_json, create_topics_with_catalogue, produce, read_topic
from tests.support.waiting import wait_for
from tests.support.worker import WorkerEnv, WorkerProcess

pytestmark = pytest.mark.integration

DIM = 64
GENRES = [("sci-fi", "space"), ("romance", "drama"), ("action", "cars")]


def catalogue() -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    items, offers = [], []
    for i, tags in enumerate(GENRES):
        items.append((f"i{i}".encode(), as_json({"item_id": f"i{i}", "tags": list(tags)})))
        offer = {
            "offer_id": f"o{i}",
            "title": f"Offer {i}",
            "item_ids": [f"i{i}"],
            "tags": list(tags),
            "value": 5.0,
            "channels": ["web", "in_app"],  # allowed without an opt-in
        }
        offers.append((f"o{i}".encode(), as_json(offer)))
    return items, offers


def event(event_id: str, user: str, item: str, kind: str = "like") -> tuple[bytes, bytes]:
    body = {
        "event_id": event_id,
        "user_id": user,
        "type": kind,
        "item_id": item,
        "ts": int(time.time() * 1000),
    }
    return user.encode(), as_json(body)


def request(request_id: str, user: str, kind: str) -> tuple[bytes, bytes]:
    body = {"schema_version": 1, "request_id": request_id, "user_id": user, "kind": kind}
    return user.encode(), as_json({**body, "ts": int(time.time() * 1000)})


async def user_keys_in_redis(client: aioredis.Redis, key_id: str) -> set[bytes]:
    """The keys of the user's own key space (the erasure marker is outside it)."""
    return {key async for key in client.scan_iter(match=f"nbo:{{u:{key_id}}}*", count=1000)}


async def values_naming(client: aioredis.Redis, key_id: str, text: bytes) -> list[bytes]:
    """The keys of the user's key space whose stored value contains ``text``."""
    naming = []
    async for key in client.scan_iter(match=f"nbo:{{u:{key_id}}}*", count=1000):
        kind = await client.type(key)
        if kind == b"hash":
            parts = [b for kv in (await client.hgetall(key)).items() for b in kv]
        elif kind == b"zset":
            parts = await client.zrange(key, 0, -1)
        elif kind == b"list":
            parts = await client.lrange(key, 0, -1)
        else:
            parts = [await client.get(key) or b""]
        if any(text in part for part in parts):
            naming.append(key)
    return naming


async def cart_entries(client: aioredis.Redis, topic: str, partitions: int, key_id: str) -> int:
    scores = [await client.zscore(cart_due_key(topic, p), key_id) for p in range(partitions)]
    return sum(score is not None for score in scores)


CART_DELAY_S = 12


@pytest.fixture(params=[None, "s3cret"], ids=["raw-ids", "pseudonymised"])
def secret(request: pytest.FixtureRequest) -> str | None:
    value: str | None = request.param
    return value


@pytest.fixture
def worker_env(
    kafka_bootstrap: str, redis_url: str, unique: Callable[[str], str], secret: str | None
) -> WorkerEnv:
    # alice's cart timer would fire CART_DELAY_S after her add_to_cart, after the erasure
    extra = {"NBO_CART_ABANDON_AFTER_S": str(CART_DELAY_S), "NBO_CART_POLL_INTERVAL_S": "0.5"}
    if secret:
        extra["NBO_PSEUDONYM_SECRET"] = secret
    return WorkerEnv(kafka_bootstrap, redis_url, unique("p"), extra=extra)


async def test_erase_and_export_requests_are_carried_out_and_audited(
    worker_env: WorkerEnv, redis_client: aioredis.Redis, tmp_path: Path, secret: str | None
) -> None:
    s = worker_env.settings()
    bootstrap = worker_env.kafka_bootstrap
    await create_topics_with_catalogue(bootstrap, s, *catalogue())
    worker = WorkerProcess(worker_env, tmp_path / "worker.log").start()
    alice, bob = f"alice-{worker_env.token}", f"bob-{worker_env.token}"
    key_secret = secret.encode() if secret else None
    alice_id, bob_id = pseudonymise(alice, key_secret), pseudonymise(bob, key_secret)
    try:
        worker.wait_ready()
        await produce(
            bootstrap,
            s.topic_user_events,
            [
                event("a1", alice, "i0"),
                event("a2", alice, "i0", "add_to_cart"),
                event("b1", bob, "i1"),
                event("b2", bob, "i1"),
            ],
        )
        published = await read_topic(bootstrap, s.topic_offers, expect=2, timeout_s=30)
        assert {m.key for m in published} >= {alice.encode(), bob.encode()}, worker.tail()

        consent = {"user_id": bob, "channels": {"web": True, "email": True}, "ts": 1_000}
        await produce(bootstrap, s.topic_user_consent, [(bob.encode(), as_json(consent))])

        async def consent_stored() -> bool:
            return bool(await redis_client.exists(user_keys(bob, secret=key_secret).consent))

        assert await wait_for(consent_stored, 20), worker.tail()

        alice_keys = await user_keys_in_redis(redis_client, alice_id)
        alice_timers = await cart_entries(
            redis_client, s.topic_user_events, s.user_events_partitions, alice_id
        )
        assert user_keys(alice, secret=key_secret).profile.encode() in alice_keys
        assert alice_timers == 1  # the add_to_cart without a purchase
        if secret:
            assert not [k async for k in redis_client.scan_iter(match=f"*{alice}*", count=1000)]
            # nor in any stored value: offers, consent, policy state (alice's pending cart
            # timer), decisions, profile
            for person, key_id in ((alice, alice_id), (bob, bob_id)):
                assert await values_naming(redis_client, key_id, person.encode()) == [], person
        cart_due = time.monotonic() + CART_DELAY_S  # at the latest (its ts was earlier)
        await produce(
            bootstrap,
            s.topic_privacy_requests,
            [request("r-export", bob, "export"), request("r-erase", alice, "erase")],
        )

        audits = await read_topic(bootstrap, s.topic_privacy_audit, expect=2, timeout_s=30)
        by_request = {json.loads(m.value)["request_id"]: m for m in audits}
        assert set(by_request) == {"r-export", "r-erase"}, worker.tail()

        erased = json.loads(by_request["r-erase"].value)
        assert by_request["r-erase"].key == alice.encode()
        assert (erased["kind"], erased["status"]) == ("erase", "completed")
        assert erased["deleted_keys"] == len(alice_keys)
        assert erased["timers_removed"] == alice_timers
        assert await user_keys_in_redis(redis_client, alice_id) == set()
        marker = user_keys(alice, secret=key_secret).erased
        assert int(await redis_client.get(marker)) == erased["erased_at"]
        assert await redis_client.ttl(marker) > 30 * 86_400  # outlives user-events' retention
        assert (
            await cart_entries(
                redis_client, s.topic_user_events, s.user_events_partitions, alice_id
            )
            == 0
        )

        # no further offers: the erased user's pending cart timer never fires
        before = [m for m in await read_topic(bootstrap, s.topic_offers, 1000, 2.0)
                  if m.key == alice.encode()]  # fmt: skip
        # the barrier: a cart started now is due after alice's was; once it has fired, the
        # timer poller has run past alice's due time
        late = f"late-{worker_env.token}"
        await produce(bootstrap, s.topic_user_events, [event("l1", late, "i2", "add_to_cart")])

        async def late_cart_fired() -> bool:
            found = await read_topic(bootstrap, s.topic_offers, 1000, 1.0)
            return any(m.key == late.encode() and b"cart_abandonment" in m.value for m in found)

        assert await wait_for(late_cart_fired, CART_DELAY_S + 30), worker.tail()
        assert time.monotonic() >= cart_due  # the barrier came after alice's due time
        after = [m for m in await read_topic(bootstrap, s.topic_offers, 1000, 2.0)
                 if m.key == alice.encode()]  # fmt: skip
        assert len(after) == len(before), worker.tail()
        assert await user_keys_in_redis(redis_client, alice_id) == set()

        exported = json.loads(by_request["r-export"].value)
        assert (exported["kind"], exported["status"]) == ("export", "completed")
        profile = exported["data"]["profile"]
        assert len(profile["vector"]) == DIM and profile["n_events"] == 2
        tags = [t["tag"] for t in profile["strongest_tags"]]
        assert set(tags[:2]) == {"romance", "drama"}
        assert exported["data"]["consent"]["channels"] == {"web": True, "email": True}
        assert exported["data"]["current_offers"]["user_id"] == bob
        assert user_keys(bob, secret=key_secret).profile.encode() in await user_keys_in_redis(
            redis_client, bob_id
        )
    finally:
        worker.stop()


def event_at(
    event_id: str, user: str, item: str, ts_ms: int, kind: str = "like"
) -> tuple[bytes, bytes]:
    body = {"event_id": event_id, "user_id": user, "type": kind, "item_id": item, "ts": ts_ms}
    return user.encode(), as_json(body)


async def consent_then_barrier(
    bootstrap: str, topic: str, user: str, value: bytes | None, barrier_user: str
) -> None:
    """``value`` (a tombstone when ``None``) for ``user`` on the consent topic, then a
    consent record of ``barrier_user`` on the same partition, processed after it."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, value, key=user.encode())
        barrier = {"user_id": barrier_user, "channels": {"web": True}, "ts": 1_000}
        await producer.send_and_wait(
            topic, as_json(barrier), key=barrier_user.encode(), partition=sent.partition
        )
    finally:
        await producer.stop()


async def test_an_erasure_sticks_against_a_worker_holding_the_user_tombstones_and_late_events(
    worker_env: WorkerEnv, redis_client: aioredis.Redis, tmp_path: Path, secret: str | None
) -> None:
    """As an auditor would try it: erase a person the worker holds in memory, send the consent
    tombstone, a redelivered event and an event still in lag from before the erasure, and a
    new event; only the new event may be in Redis afterwards, as a fresh profile."""
    s = worker_env.settings()
    bootstrap = worker_env.kafka_bootstrap
    await create_topics_with_catalogue(bootstrap, s, *catalogue())
    worker = WorkerProcess(worker_env, tmp_path / "worker.log").start()
    alice = f"alice-{worker_env.token}"
    key_secret = secret.encode() if secret else None
    keys = user_keys(alice, secret=key_secret)
    before = int(time.time() * 1000)
    try:
        worker.wait_ready()
        history = [
            event_at("a1", alice, "i0", before, "purchase"),
            event_at("a2", alice, "i0", before + 1),
            event_at("a3", alice, "i2", before + 2, "view"),
        ]
        await produce(bootstrap, s.topic_user_events, history)

        async def profiled() -> bool:
            return await redis_client.hget(keys.profile, "n_events") == b"3"

        assert await wait_for(profiled, 30), worker.tail()  # and held in the worker's cache

        await produce(bootstrap, s.topic_privacy_requests, [request("r-erase", alice, "erase")])
        audits = await read_topic(bootstrap, s.topic_privacy_audit, expect=1, timeout_s=30)
        (erased,) = [json.loads(m.value) for m in audits if m.key == alice.encode()]
        erased_at = erased["erased_at"]
        assert await user_keys_in_redis(redis_client, pseudonymise(alice, key_secret)) == set()

        await consent_then_barrier(
            bootstrap, s.topic_user_consent, alice, None, f"cb-{worker_env.token}"
        )

        async def tombstone_applied() -> bool:
            barrier = user_keys(f"cb-{worker_env.token}", secret=key_secret).consent
            return bool(await redis_client.exists(barrier))

        assert await wait_for(tombstone_applied, 30), worker.tail()
        # the new event must be dated after the erasure
        await asyncio.sleep(max(0, erased_at + 2 - int(time.time() * 1000)) / 1000)
        await produce(
            bootstrap,
            s.topic_user_events,
            [
                history[0],  # redelivered: the purchase from before the erasure
                event_at("late", alice, "i2", erased_at, "purchase"),  # in lag, at the erasure
                event_at("new", alice, "i1", int(time.time() * 1000)),
            ],
        )
        markers = await produce_markers(
            bootstrap, s.topic_user_events, s.user_events_partitions, worker_env.token
        )
        applied = await markers_applied(
            redis_client, markers, prefix=s.redis_prefix, secret=key_secret
        )
        assert applied, worker.tail()

        left = await user_keys_in_redis(redis_client, pseudonymise(alice, key_secret))
        assert keys.purchased.encode() not in left and keys.consent.encode() not in left
        assert await redis_client.hget(keys.profile, "n_events") == b"1"
        assert await redis_client.zrange(keys.seen, 0, -1) == [b"i1"]
        assert int(await redis_client.get(keys.erased)) == erased_at
    finally:
        worker.stop()


async def test_a_rebuild_from_the_topics_after_redis_was_lost_does_not_bring_an_erased_person_back(
    kafka_bootstrap: str,
    redis_url: str,
    unique: Callable[[str], str],
    redis_client: aioredis.Redis,
    tmp_path: Path,
) -> None:
    """The runbook's worst case: Redis lost after an erase, markers restored from
    privacy-audit with ``nbo erasures restore``, then every event replayed by a new group."""
    first = WorkerEnv(kafka_bootstrap, redis_url, unique("rb"))
    s = first.settings()
    await create_topics_with_catalogue(kafka_bootstrap, s, *catalogue())
    alice, bob = f"alice-{first.token}", f"bob-{first.token}"
    people = (alice, bob)
    now = int(time.time() * 1000)
    await produce(
        kafka_bootstrap,
        s.topic_user_events,
        [event_at("a1", alice, "i0", now - 2, "purchase"), event_at("a2", alice, "i0", now - 1),
         event_at("b1", bob, "i1", now - 2), event_at("b2", bob, "i1", now - 1)],
    )  # fmt: skip
    worker = WorkerProcess(first, tmp_path / "first.log").start()
    try:
        worker.wait_ready()

        async def both_profiled() -> bool:
            found = [
                await redis_client.hget(user_keys(u).profile, "n_events") for u in (alice, bob)
            ]
            return found == [b"2", b"2"]

        assert await wait_for(both_profiled, 30), worker.tail()
        await produce(kafka_bootstrap, s.topic_privacy_requests, [request("r1", alice, "erase")])
        audits = await read_topic(kafka_bootstrap, s.topic_privacy_audit, expect=1, timeout_s=30)
        assert len(audits) == 1, worker.tail()
    finally:
        worker.stop()

    # Redis is lost: every key of both people, the erasure marker included
    for user in people:
        keys = user_keys(user)
        await redis_client.delete(*keys.all(), keys.erased)
    environ = {**os.environ, **first.env()}
    restored = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "agents.cli", "erasures", "restore"],
        env=environ, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert restored.returncode == 0, restored.stderr
    assert "restored 1 erasure markers" in restored.stdout
    assert await redis_client.exists(user_keys(alice).erased)

    # the replay: a new consumer group reads user-events from the beginning
    replay = WorkerEnv(
        kafka_bootstrap, redis_url, first.token, extra={"NBO_APP_ID": f"nbo-replay-{first.token}"}
    )
    worker = WorkerProcess(replay, tmp_path / "replay.log").start()
    try:
        worker.wait_ready()
        markers = await produce_markers(
            kafka_bootstrap, s.topic_user_events, s.user_events_partitions, first.token
        )
        assert await markers_applied(redis_client, markers, prefix=s.redis_prefix), worker.tail()
        assert await redis_client.hget(user_keys(bob).profile, "n_events") == b"2"
        assert await user_keys_in_redis(redis_client, alice) == set()
    finally:
        worker.stop()
