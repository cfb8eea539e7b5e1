"""Small aiokafka helpers for integration tests: produce JSON, read a topic from the start."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from app.settings import Settings
from app.topics import ensure_topics, topic_specs


def _kwargs(kafka: str | dict[str, Any]) -> dict[str, Any]:
    return {"bootstrap_servers": kafka} if isinstance(kafka, str) else kafka


async def produce(
    kafka: str | dict[str, Any], topic: str, records: Iterable[tuple[bytes | None, bytes | None]]
) -> int:
    """Send (key, value) pairs in order and wait for every acknowledgement."""
    producer = AIOKafkaProducer(acks="all", linger_ms=5, **_kwargs(kafka))
    await producer.start()
    count = 0
    try:
        futures = []
        for key, value in records:
            futures.append(await producer.send(topic, key=key, value=value))
            count += 1
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return count


def as_json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


async def read_topic(
    kafka: str | dict[str, Any], topic: str, expect: int, timeout_s: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read ``topic`` from the beginning until ``expect`` records arrived or the time is up."""
    consumer = AIOKafkaConsumer(
        topic,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **_kwargs(kafka),
    )
    await consumer.start()
    out: list[ConsumerRecord[bytes, bytes]] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(out) < expect and loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=300)
            for records in batches.values():
                out.extend(records)
    finally:
        await consumer.stop()
    return out


async def create_topics_with_catalogue(
    kafka: str | dict[str, Any],
    settings: Settings,
    items: Iterable[tuple[bytes | None, bytes | None]],
    offers: Iterable[tuple[bytes | None, bytes | None]],
) -> None:
    """Create every topic of ``settings`` and load the item and offer catalogues: what a
    test does before its worker starts."""
    await ensure_topics(kafka, topic_specs(settings))
    await produce(kafka, settings.topic_item_catalog, items)
    await produce(kafka, settings.topic_offer_catalog, offers)
