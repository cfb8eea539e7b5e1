"""Feedback through the real broker changes the offer stats in Redis and the ranking.

Five offers that are equal in every score part but exploration; users then respond to them:
one offer is accepted every time it is shown, one is shown and never taken. With a fixed
exploration seed, the offer people take up is ranked first for every new user, and its
exploration part says so.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from app.storage.offer_stats import OfferStatsConfig, RedisOfferStatsStore
from app.topics import ensure_topics, topic_specs
from tests.support.barrier import markers_applied, produce_markers
from tests.support.kafka_io import as_json, produce, read_topic
from tests.support.worker import WorkerEnv, WorkerProcess

pytestmark = pytest.mark.integration

OFFERS = [f"o{i}" for i in range(5)]


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def worker_env(kafka_bootstrap: str, redis_url: str, unique: Callable[[str], str]) -> WorkerEnv:
    env = WorkerEnv(kafka_bootstrap, redis_url, unique("learn"))
    env.extra = {
        "NBO_EXPLORATION_WEIGHT": "1.0",
        "NBO_EXPLORATION_SEED": "42",
        "NBO_OFFER_STATS_REFRESH_S": "0.2",
    }
    return env


async def test_feedback_changes_offer_stats_in_redis_and_the_seeded_ranking(
    worker_env: WorkerEnv, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    s = worker_env.settings()
    bootstrap = worker_env.kafka_bootstrap
    await ensure_topics(bootstrap, topic_specs(s))
    offers = [
        (o.encode(), as_json({"offer_id": o, "title": o, "tags": ["drama"], "value": 1.0,
                              "channels": ["web"]}))
        for o in OFFERS
    ]  # fmt: skip
    await produce(bootstrap, s.topic_offer_catalog, offers)
    store = RedisOfferStatsStore(redis_client, OfferStatsConfig(prefix=s.redis_prefix))
    partitions = range(s.user_events_partitions)
    token = worker_env.token

    def like(user: str, n: int) -> tuple[bytes, bytes]:
        body = {"event_id": f"like-{user}-{n}", "user_id": user, "type": "like",
                "item_id": "book", "tags": ["drama"], "ts": now_ms()}  # fmt: skip
        return user.encode(), as_json(body)

    def response(n: int, kind: str, offer: str) -> tuple[bytes, bytes]:
        user = f"fb{n % 20}-{token}"
        body = {"event_id": f"{kind}-{offer}-{n}", "user_id": user, "type": kind,
                "offer_id": offer, "channel": "web", "ts": now_ms()}  # fmt: skip
        return user.encode(), as_json(body)

    async def top_offers(users: list[str]) -> dict[str, dict[str, Any]]:
        found = await read_topic(bootstrap, s.topic_offers, 10_000, 3.0)
        wanted = {u.encode() for u in users}
        return {m.key.decode(): json.loads(m.value)["offers"][0] for m in found if m.key in wanted}

    worker = WorkerProcess(worker_env, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        before = [f"before{n}-{token}" for n in range(3)]
        for n, user in enumerate(before):
            await produce(bootstrap, s.topic_user_events, [like(user, n)])
        first_before = await top_offers(before)
        assert len(first_before) == 3, worker.tail()
        assert all(o["score_parts"]["exploration"] < 0.6 for o in first_before.values())

        taken = [response(n, kind, "o3") for n in range(100)
                 for kind in ("offer_impression", "offer_accepted")]  # fmt: skip
        ignored = [response(n, "offer_impression", "o0") for n in range(200)]
        await produce(bootstrap, s.topic_user_events, [*taken, *ignored])
        markers = await produce_markers(
            bootstrap, s.topic_user_events, s.user_events_partitions, token
        )
        assert await markers_applied(redis_client, markers), worker.tail()
        stats = await store.read_all(s.topic_user_events, partitions)
        assert stats["o3"].accepts == pytest.approx(100, rel=0.01), worker.tail()
        assert stats["o3"].impressions == pytest.approx(100, rel=0.01)
        assert stats["o0"].impressions == pytest.approx(200, rel=0.01)
        assert stats["o0"].clicks == 0 and stats["o0"].accepts == 0
        await asyncio.sleep(1.0)  # past the stats refresh period

        after = [f"after{n}-{token}" for n in range(5)]
        for n, user in enumerate(after):
            await produce(bootstrap, s.topic_user_events, [like(user, n)])
        first_after = await top_offers(after)
        assert len(first_after) == 5, worker.tail()
        assert {o["offer_id"] for o in first_after.values()} == {"o3"}
        assert all(o["score_parts"]["exploration"] > 0.8 for o in first_after.values())
        assert all(o["reason"] for o in first_after.values())
    finally:
        worker.stop()
