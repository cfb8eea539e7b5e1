"""A record that makes processing fail for good, against a real worker, broker and Redis: it is
dead-lettered with its error, the other records of its batch are applied exactly once, and the
stream goes on.

The poison is real: one user's ``seen`` key holds a value of the wrong type, so the commit
script's ZADD on it fails with WRONGTYPE for every write of that user, while the same
pipeline commits the others' writes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from app.clock import now_ms
from app.core.dead_letters import HEADER_ERROR_CLASS
from app.storage.keys import user_keys
from tests.integration.test_privacy_requests import catalogue
from tests.support.barrier import markers_applied, produce_markers
from tests.support.kafka_io import as_json, create_topics_with_catalogue, produce, read_topic
from tests.support.worker import WorkerEnv, WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


async def test_a_poison_record_is_dead_lettered_and_its_batch_is_applied_once(
    kafka_bootstrap: str,
    redis_url: str,
    redis_client: aioredis.Redis,
    unique: Callable[[str], str],
    tmp_path: Path,
) -> None:
    env = WorkerEnv(kafka_bootstrap, redis_url, unique("poison"), partitions=1)
    s = env.settings()
    await create_topics_with_catalogue(kafka_bootstrap, s, *catalogue())
    users = [f"u{n}-{env.token}" for n in range(6)]
    poison = f"poison-{env.token}"
    await redis_client.set(user_keys(poison).seen, b"not a sorted set")

    def like(n: int, user: str) -> tuple[bytes, bytes]:
        body = {"event_id": f"e{n}", "user_id": user, "type": "like", "item_id": "i0",
                "ts": now_ms()}  # fmt: skip
        return user.encode(), as_json(body)

    # one partition: the poison sits in the middle of the others' events, in one batch
    records = [like(n, u) for n, u in enumerate(users[:3])] + [like(3, poison)]
    records += [like(4 + n, u) for n, u in enumerate(users[3:])]
    await produce(kafka_bootstrap, s.topic_user_events, records)
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        markers = await produce_markers(kafka_bootstrap, s.topic_user_events, 1, env.token)
        assert await markers_applied(redis_client, markers), worker.tail()

        letters = await read_topic(kafka_bootstrap, s.topic_dead_letters, expect=1, timeout_s=10)
        assert [(r.key, dict(r.headers)[HEADER_ERROR_CLASS]) for r in letters] == [
            (poison.encode(), b"ResponseError")
        ], worker.tail()
        counts = [await redis_client.hget(user_keys(u).profile, "n_events") for u in users]
        assert counts == [b"1"] * len(users)  # applied, and once, despite the retried halves
        assert worker.metrics().get("nbo_batch_retries", 0.0) == 0.0  # isolated, not retried
    finally:
        worker.stop()
