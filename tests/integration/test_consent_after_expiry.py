"""Consent that outlives everything else: a real worker, an ordinary producer, redis reads.

The consent key has no TTL; every other key of a user has one. An objection and opt-outs must
hold when all the user's other keys have expired and the worker restarted with an empty cache
(so it takes the user for new), and an objector's behaviour is stored nowhere.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from app.clock import now_ms
from app.storage.keys import user_keys
from tests.integration.test_privacy_requests import catalogue
from tests.support.kafka_io import as_json, create_topics_with_catalogue, produce, read_topic
from tests.support.waiting import wait_for
from tests.support.worker import WorkerEnv, WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def event(event_id: str, user: str, kind: str = "like", item: str = "i0") -> tuple[bytes, bytes]:
    body = {"event_id": event_id, "user_id": user, "type": kind, "item_id": item, "ts": now_ms()}
    return user.encode(), as_json(body)


async def test_an_objection_holds_after_expiry_and_restart_and_an_objector_leaves_no_trace(
    kafka_bootstrap: str,
    redis_url: str,
    redis_client: aioredis.Redis,
    unique: Callable[[str], str],
    tmp_path: Path,
) -> None:
    env = WorkerEnv(kafka_bootstrap, redis_url, unique("expiry"))
    s = env.settings()
    # offers on web and in_app: allowed without an opt-in
    await create_topics_with_catalogue(kafka_bootstrap, s, *catalogue())
    olga, marker = f"olga-{env.token}", f"marker-{env.token}"
    keys = user_keys(olga)

    worker = WorkerProcess(env, tmp_path / "first.log").start()
    try:
        worker.wait_ready()
        await produce(kafka_bootstrap, s.topic_user_events, [event("o1", olga)])
        first = await read_topic(kafka_bootstrap, s.topic_offers, expect=1, timeout_s=30)
        assert [m.key for m in first] == [olga.encode()], worker.tail()
        objection = {"user_id": olga, "channels": {"web": False, "in_app": False},
                     "objection": True, "ts": now_ms()}  # fmt: skip
        await produce(kafka_bootstrap, s.topic_user_consent, [(olga.encode(), as_json(objection))])

        async def objection_stored() -> bool:
            stored = await redis_client.get(keys.consent)
            return stored is not None and b'"objection":true' in stored

        assert await wait_for(objection_stored), worker.tail()
    finally:
        worker.stop()

    # every key of the user but the consent expires (TTL), and a new worker starts cold
    others = [k async for k in redis_client.scan_iter(match=f"nbo:{{u:{olga}}}:*")]
    await redis_client.delete(*[k for k in others if k != keys.consent.encode()])
    assert [k async for k in redis_client.scan_iter(match=f"nbo:{{u:{olga}}}:*")] == [
        keys.consent.encode()
    ]
    worker = WorkerProcess(env, tmp_path / "second.log").start()
    try:
        worker.wait_ready()
        await produce(
            kafka_bootstrap,
            s.topic_user_events,
            [event("o2", olga), event("o3", olga, "purchase", "i1"), event("m1", marker)],
        )

        # the barrier: the marker's offer, produced after olga's events, must be seen
        async def marker_offered() -> bool:
            found = await read_topic(kafka_bootstrap, s.topic_offers, expect=10, timeout_s=1)
            return any(m.key == marker.encode() for m in found)

        assert await wait_for(marker_offered), worker.tail()

        async def olga_decided() -> bool:
            found = await read_topic(kafka_bootstrap, s.topic_decisions, expect=10, timeout_s=1)
            return any(m.key == olga.encode() and json.loads(m.value)["trigger"]["event_id"]
                       in ("o2", "o3") for m in found)  # fmt: skip

        assert await wait_for(olga_decided), worker.tail()
    finally:
        worker.stop()

    offers_to_olga = [m for m in await read_topic(kafka_bootstrap, s.topic_offers, 100, 3)
                      if m.key == olga.encode()]  # fmt: skip
    assert len(offers_to_olga) == 1  # only the one before the objection
    decisions = [json.loads(m.value)
                 for m in await read_topic(kafka_bootstrap, s.topic_decisions, 100, 3)
                 if m.key == olga.encode()]  # fmt: skip
    after = [d for d in decisions if d["trigger"]["event_id"] in ("o2", "o3")]
    assert after and all(not d["sent"] and d["reason"] == "objection" for d in after)
    # nothing of her behaviour is stored: no vector, seen, purchased or offers
    assert await redis_client.hget(keys.profile, "vec") is None
    for key in (keys.seen, keys.purchased, keys.offers):
        assert not await redis_client.exists(key), key
    consent = json.loads(await redis_client.get(keys.consent))
    assert consent["objection"] is True
