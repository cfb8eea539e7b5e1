"""A real worker against records dated far in the future, produced with an ordinary client and
checked in Redis and on the dead-letter topic: none of them touches state, and the genuine
records that follow them (an event, an objection) are applied."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from app.clock import now_ms
from app.core.dead_letters import HEADER_ERROR_CLASS
from app.core.timestamps import MAX_TS_MS
from app.storage.keys import user_keys
from tests.integration.test_privacy_requests import catalogue
from tests.support.kafka_io import as_json, create_topics_with_catalogue, produce, read_topic
from tests.support.waiting import wait_for
from tests.support.worker import WorkerEnv, WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


async def test_records_from_year_9999_are_dead_lettered_and_leave_state_alone(
    kafka_bootstrap: str,
    redis_url: str,
    redis_client: aioredis.Redis,
    unique: Callable[[str], str],
    tmp_path: Path,
) -> None:
    env = WorkerEnv(kafka_bootstrap, redis_url, unique("clock"))
    s = env.settings()
    await create_topics_with_catalogue(kafka_bootstrap, s, *catalogue())
    alice, bob = f"alice-{env.token}", f"bob-{env.token}"
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        future = {"event_id": "f1", "user_id": alice, "type": "purchase", "item_id": "i0",
                  "ts": MAX_TS_MS}  # fmt: skip
        await produce(kafka_bootstrap, s.topic_user_events, [(alice.encode(), as_json(future))])
        locked = {"user_id": bob, "channels": {"email": True}, "ts": MAX_TS_MS}
        await produce(kafka_bootstrap, s.topic_user_consent, [(bob.encode(), as_json(locked))])
        # the genuine records, after the hostile ones on the same partitions
        genuine = {"event_id": "g1", "user_id": alice, "type": "like", "item_id": "i1",
                   "ts": now_ms()}  # fmt: skip
        await produce(kafka_bootstrap, s.topic_user_events, [(alice.encode(), as_json(genuine))])
        objection = {"user_id": bob, "channels": {"email": False}, "objection": True,
                     "ts": now_ms()}  # fmt: skip
        await produce(kafka_bootstrap, s.topic_user_consent, [(bob.encode(), as_json(objection))])

        alice_keys, bob_keys = user_keys(alice), user_keys(bob)

        async def genuine_applied() -> bool:
            n_events = await redis_client.hget(alice_keys.profile, "n_events")
            stored = await redis_client.get(bob_keys.consent)
            return n_events is not None and stored is not None and b'"objection":true' in stored

        assert await wait_for(genuine_applied), worker.tail()

        letters = await read_topic(kafka_bootstrap, s.topic_dead_letters, expect=2, timeout_s=15)
        assert sorted((r.key, dict(r.headers)[HEADER_ERROR_CLASS]) for r in letters) == sorted(
            [(alice.encode(), b"FutureTimestamp"), (bob.encode(), b"FutureTimestamp")]
        )
        assert int(await redis_client.hget(alice_keys.profile, "n_events")) == 1  # the genuine like
        assert await redis_client.zscore(alice_keys.purchased, "i0") is None
        consent = json.loads(await redis_client.get(bob_keys.consent))
        assert consent["objection"] is True and consent["ts"] < MAX_TS_MS
    finally:
        worker.stop()


async def test_an_erase_request_from_the_future_is_dead_lettered_and_erases_nothing(
    kafka_bootstrap: str,
    redis_url: str,
    redis_client: aioredis.Redis,
    unique: Callable[[str], str],
    tmp_path: Path,
) -> None:
    env = WorkerEnv(kafka_bootstrap, redis_url, unique("clockp"))
    s = env.settings()
    await create_topics_with_catalogue(kafka_bootstrap, s, *catalogue())
    carol = f"carol-{env.token}"
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        like = {"event_id": "c1", "user_id": carol, "type": "like", "item_id": "i0",
                "ts": now_ms()}  # fmt: skip
        await produce(kafka_bootstrap, s.topic_user_events, [(carol.encode(), as_json(like))])

        async def profiled() -> bool:
            return bool(await redis_client.exists(user_keys(carol).profile))

        assert await wait_for(profiled), worker.tail()

        def request(request_id: str, kind: str, ts: int) -> tuple[bytes, bytes]:
            body = {"schema_version": 1, "request_id": request_id, "user_id": carol,
                    "kind": kind, "ts": ts}  # fmt: skip
            return carol.encode(), as_json(body)

        # the hostile erase, then a genuine export on the same partition: its audit record is
        # the barrier that the erase was handled before it
        await produce(
            kafka_bootstrap,
            s.topic_privacy_requests,
            [request("r-future", "erase", MAX_TS_MS), request("r-now", "export", now_ms())],
        )
        audits = await read_topic(kafka_bootstrap, s.topic_privacy_audit, expect=1, timeout_s=30)
        assert [json.loads(a.value)["request_id"] for a in audits] == ["r-now"], worker.tail()
        letters = await read_topic(kafka_bootstrap, s.topic_dead_letters, expect=1, timeout_s=10)
        assert [(r.key, dict(r.headers)[HEADER_ERROR_CLASS]) for r in letters] == [
            (carol.encode(), b"FutureTimestamp")
        ]
        assert await redis_client.exists(user_keys(carol).profile)  # nothing was erased
    finally:
        worker.stop()
