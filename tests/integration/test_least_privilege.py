"""Least privilege that runs: a real worker and a real ``nbo api`` against a redis-server
loaded with the shipped ACL file, as the users it defines (the worker as ``nbo-worker``, the
lookups as the read-only ``nbo-lookup``), through every path that touches Redis: events, a
decision request, a cart timer that fires, a consent change and a tombstone, an erase, the
lookups. Nothing may be refused: the server's ACL log stays empty and no permission error is
logged."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.integration.test_worker_end_to_end import catalogue_records
from tests.support.kafka_io import as_json, create_topics_with_catalogue, produce, read_topic
from tests.support.redis_acl import acl_redis
from tests.support.waiting import wait_for
from tests.support.worker import ApiProcess, WorkerEnv, WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CART_DELAY_S = 3


def event(event_id: str, user: str, kind: str, **fields: object) -> tuple[bytes, bytes]:
    body = {"event_id": event_id, "user_id": user, "type": kind,
            "ts": int(time.time() * 1000), **fields}  # fmt: skip
    return user.encode(), as_json(body)


async def test_the_worker_and_the_lookups_run_every_path_under_the_shipped_acl(
    kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    with acl_redis(tmp_path) as server:
        env = WorkerEnv(
            kafka_bootstrap,
            server.worker_url(),
            unique("acl"),
            extra={
                "NBO_CART_ABANDON_AFTER_S": str(CART_DELAY_S),
                "NBO_CART_POLL_INTERVAL_S": "0.5",
                "NBO_W_COOCCURRENCE": "0.3",  # loads read the recent items too (ZREVRANGE)
            },
        )
        s = env.settings()
        await create_topics_with_catalogue(kafka_bootstrap, s, *catalogue_records())
        admin = aioredis.Redis.from_url(server.url(), socket_timeout=5)
        worker = WorkerProcess(env, tmp_path / "worker.log").start()
        lookups = ApiProcess(
            dataclasses.replace(env, redis_url=server.lookup_url()), tmp_path / "api.log"
        ).start()
        t = env.token
        alice, bob, carol, dave = (f"{n}-{t}" for n in ("alice", "bob", "carol", "dave"))
        try:
            worker.wait_ready()
            lookups.wait_ready()
            await produce(
                kafka_bootstrap,
                s.topic_user_events,
                [
                    event("a1", alice, "like", item_id="i0"),
                    event("a2", alice, "decision_request", channel="in_app"),
                    event("b1", bob, "add_to_cart", item_id="i1"),
                    event("c1", carol, "view", item_id="i2"),
                    event("d1", dave, "like", item_id="i3"),
                ],
            )
            consent = {"user_id": carol, "channels": {"web": False}, "ts": 1_000}
            await produce(
                kafka_bootstrap,
                s.topic_user_consent,
                [(carol.encode(), as_json(consent)), (alice.encode(), None)],  # and a tombstone
            )

            async def profiled(user: str) -> bool:
                status, _ = lookups.get_json(f"/users/{user}/profile")
                return status == 200

            assert await wait_for(lambda: profiled(dave), 60), worker.tail()
            request = {"request_id": f"r-{t}", "user_id": dave, "kind": "erase",
                       "ts": int(time.time() * 1000)}  # fmt: skip
            await produce(
                kafka_bootstrap, s.topic_privacy_requests, [(dave.encode(), as_json(request))]
            )

            audits = await read_topic(
                kafka_bootstrap, s.topic_privacy_audit, expect=1, timeout_s=30
            )
            assert [json.loads(a.value)["kind"] for a in audits] == ["erase"], worker.tail()

            async def cart_decided() -> bool:
                found = await read_topic(kafka_bootstrap, s.topic_decisions, 100, timeout_s=1)
                return any(b"cart_abandonment" in r.value for r in found)

            assert await wait_for(cart_decided, CART_DELAY_S + 30), worker.tail()
            decisions = await read_topic(kafka_bootstrap, s.topic_decisions, 100, timeout_s=2)
            triggers = {json.loads(r.value)["trigger"]["type"] for r in decisions}
            assert {"decision_request", "cart_abandonment"} <= triggers

            for path in (f"/users/{alice}/offers", f"/users/{alice}/decisions",
                         f"/users/{carol}/profile"):  # fmt: skip
                assert lookups.get_json(path)[0] == 200, (path, lookups.tail())
            assert lookups.get_json(f"/users/{dave}/profile")[0] == 404  # erased
            assert await admin.exists(f"nbo:{{u:{carol}}}:consent")

            assert await admin.acl_log() == []
        finally:
            lookups.stop()
            worker.stop()
            await admin.aclose()
        for log in ("worker.log", "api.log"):
            text = (tmp_path / log).read_text().lower()
            assert "noperm" not in text and "no permissions" not in text, log
