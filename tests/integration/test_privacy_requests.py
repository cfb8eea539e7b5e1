"""A real worker process: consent records applied, users exported and erased on request, with
one privacy-audit record per request, against the real broker and Redis."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from app.core.pseudonym import pseudonymise
from app.storage.keys import cart_due_key, user_keys
from app.topics import ensure_topics, topic_specs
from tests.support.kafka_io import as_json, produce, read_topic
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
    return {key async for key in client.scan_iter(match=f"*{{u:{key_id}}}*")}


async def cart_entries(client: aioredis.Redis, topic: str, partitions: int, key_id: str) -> int:
    scores = [await client.zscore(cart_due_key(topic, p), key_id) for p in range(partitions)]
    return sum(score is not None for score in scores)


CART_DELAY_S = 12


async def wait_for(check: Callable[[], Awaitable[bool]], timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.2)
    return False


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
    await ensure_topics(bootstrap, topic_specs(s))
    items, offers = catalogue()
    await produce(bootstrap, s.topic_item_catalog, items)
    await produce(bootstrap, s.topic_offer_catalog, offers)
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

        assert await wait_for(consent_stored), worker.tail()

        alice_keys = await user_keys_in_redis(redis_client, alice_id)
        alice_timers = await cart_entries(
            redis_client, s.topic_user_events, s.user_events_partitions, alice_id
        )
        assert user_keys(alice, secret=key_secret).profile.encode() in alice_keys
        assert alice_timers == 1  # the add_to_cart without a purchase
        if secret:
            assert not [k async for k in redis_client.scan_iter(match=f"*{alice}*")]
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
