"""Redis goes away under a running worker: the stream waits, then resumes; nothing is lost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from app.storage.keys import user_keys
from app.topics import ensure_topics, topic_specs
from tests.support.kafka_io import as_json, produce
from tests.support.redis_server import PrivateRedis
from tests.support.worker import WorkerEnv, WorkerProcess, free_port

pytestmark = pytest.mark.integration


def view(n: int, user: str) -> tuple[bytes, bytes]:
    body = {"event_id": f"v{n}", "user_id": user, "type": "view", "item_id": f"i{n % 5}",
            "tags": ["garden"], "ts": 1_700_000_000_000 + n}  # fmt: skip
    return user.encode(), as_json(body)


async def n_events(url: str, user: str) -> int:
    client = aioredis.Redis.from_url(url, socket_timeout=2)
    try:
        return int(await client.hget(user_keys(user).profile, "n_events") or 0)
    finally:
        await client.aclose()


async def wait_for_n_events(url: str, user: str, target: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    count = await n_events(url, user)
    while count < target and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        count = await n_events(url, user)
    return count


async def test_events_wait_while_redis_is_down_and_are_applied_when_it_returns(
    kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    redis = PrivateRedis(tmp_path / "redis", free_port()).start()
    env = WorkerEnv(kafka_bootstrap, redis.url, unique("outage"))
    s = env.settings()
    await ensure_topics(kafka_bootstrap, topic_specs(s))
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    user = f"erin-{env.token}"
    try:
        worker.wait_ready()
        await produce(kafka_bootstrap, s.topic_user_events, [view(n, user) for n in range(10)])
        assert await wait_for_n_events(redis.url, user, 10, timeout_s=20) == 10, worker.tail()

        redis.stop()
        await produce(kafka_bootstrap, s.topic_user_events, [view(n, user) for n in range(10, 30)])
        # the barrier: the worker has met the outage and is retrying the batch (not idle)
        deadline = time.monotonic() + 30
        while worker.metrics().get("nbo_batch_retries", 0.0) < 2:
            assert time.monotonic() < deadline, worker.tail()
            await asyncio.sleep(0.2)
        assert worker.proc is not None and worker.proc.poll() is None, worker.tail()
        status, body = worker.get_json("/readyz")
        assert status == 503 and body["redis"] is False
        assert worker.get_json("/healthz")[0] == 200

        redis.start()
        assert await wait_for_n_events(redis.url, user, 30, timeout_s=30) == 30, worker.tail()
    finally:
        worker.stop()
        redis.stop()
