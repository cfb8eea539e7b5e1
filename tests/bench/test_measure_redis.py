"""The benchmark's readings of the Redis server, against a real one."""

from __future__ import annotations

import time

import pytest
import redis

from app.bench.measure import compact_aof, redis_aof_rewrites

pytestmark = pytest.mark.integration


def _wait_no_rewrite(client: redis.Redis, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while client.info("persistence")["aof_rewrite_in_progress"]:
        assert time.monotonic() < deadline, "an AOF rewrite did not finish"
        time.sleep(0.05)


async def test_an_aof_rewrite_is_counted(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        if not client.info("persistence")["aof_enabled"]:
            pytest.fail("the test Redis must persist to an AOF, as the stack's does")
        _wait_no_rewrite(client)
        before = await redis_aof_rewrites(redis_url)
        client.bgrewriteaof()
        assert await redis_aof_rewrites(redis_url) == before + 1  # under way or done: counted
        _wait_no_rewrite(client)
        assert await redis_aof_rewrites(redis_url) == before + 1  # and counted once
    finally:
        client.close()


async def test_compacting_the_aof_returns_once_its_rewrite_is_done(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        if not client.info("persistence")["aof_enabled"]:
            pytest.fail("the test Redis must persist to an AOF, as the stack's does")
        before = await redis_aof_rewrites(redis_url)
        client.set("nbo-test:compact", "x" * 1000)
        assert await compact_aof(redis_url) is True
        info = client.info("persistence")
        assert info["aof_rewrites"] == before + 1  # one rewrite, its own
        assert not info["aof_rewrite_in_progress"]
        assert info["aof_last_bgrewrite_status"] == "ok"
    finally:
        client.delete("nbo-test:compact")
        client.close()
