"""The console's broker and Redis readers when nothing answers: the page gets a view that
names the error (kept a few seconds, so a reload does not ask again)."""

from __future__ import annotations

import socket

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from agents.console.kafka import CACHE_S, KafkaConsoleSource
from agents.console.offer_source import RedisOfferSource
from app.storage.offer_stats import RedisOfferStatsStore

pytestmark = pytest.mark.agents


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_a_broker_that_does_not_answer_gives_a_view_naming_it_kept_a_few_seconds() -> None:
    now = [0.0]
    kwargs = {"bootstrap_servers": f"127.0.0.1:{closed_port()}"}
    source = KafkaConsoleSource(kwargs, "g", "events", "dlq", 5, clock=lambda: now[0])
    view = await source.kafka_view()
    assert view.error is not None and "did not answer" in view.error
    assert view.lag == () and view.dead_letters.total == 0
    assert await source.kafka_view() is view
    now[0] += CACHE_S
    assert await source.kafka_view() is not view  # asked again


async def test_redis_and_the_catalogue_unreachable_are_named() -> None:
    client = aioredis.Redis(
        host="127.0.0.1", port=closed_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    kwargs = {"bootstrap_servers": f"127.0.0.1:{closed_port()}"}
    source = RedisOfferSource(RedisOfferStatsStore(client), "events", 2, "offers", kwargs)
    try:
        data = await source.offer_data()
    finally:
        await client.aclose()
    assert data.stats == {} and data.titles == {} and data.partitions == 2
    assert data.error is not None
    assert "offer statistics unavailable" in data.error
    assert "offer catalogue unavailable" in data.error
