"""The services are real: a Kafka broker that keeps per-key order, a Redis that stores."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from app.settings import Settings
from tests.conftest import NewTopicFactory
from tests.support.services import Services

pytestmark = pytest.mark.integration


async def test_thousand_messages_round_trip_through_broker_in_order_per_key(
    kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    topic = await new_topic("smoke", partitions=3)
    sent: dict[bytes, list[int]] = defaultdict(list)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(1000):
            key = f"user-{i % 17}".encode()
            sent[key].append(i)
            await producer.send(topic, key=key, value=str(i).encode())
        await producer.flush()
    finally:
        await producer.stop()

    received: dict[bytes, list[int]] = defaultdict(list)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"{topic}-group",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        deadline = asyncio.get_running_loop().time() + 30
        count = 0
        while count < 1000 and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    assert record.key is not None and record.value is not None
                    received[record.key].append(int(record.value))
                    count += 1
    finally:
        await consumer.stop()

    assert count == 1000
    assert received == sent


async def test_redis_stores_and_returns_a_value(
    redis_client: aioredis.Redis, unique: Callable[[str], str]
) -> None:
    key = unique("nbo:test:smoke")
    try:
        assert await redis_client.set(key, b"\x00\x01binary", ex=60)
        assert await redis_client.get(key) == b"\x00\x01binary"
        assert 0 < await redis_client.ttl(key) <= 60
    finally:
        await redis_client.delete(key)


def test_stack_status_reports_both_services_running(services: Services) -> None:
    settings = Settings()
    local_kafka = f"127.0.0.1:{settings.stack_kafka_port}"
    if services.source == "testcontainers" or services.kafka_bootstrap != local_kafka:
        pytest.skip(f"the services in use ({services.source}) are not the local stack")
    result = subprocess.run(
        [sys.executable, "-m", "agents.cli", "stack", "status", "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "kafka" in result.stdout.lower() and "redis" in result.stdout.lower()
