"""Producing and tailing records with aiokafka, shared by the commands."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from tqdm import tqdm

MAX_IN_FLIGHT = 10_000


def _kwargs(kafka: str | dict[str, Any]) -> dict[str, Any]:
    return {"bootstrap_servers": kafka} if isinstance(kafka, str) else kafka


async def send_all(
    kafka: str | dict[str, Any],
    topic: str,
    records: Iterable[tuple[bytes | None, bytes | None]],
    *,
    total: int | None = None,
    progress: bool = True,
    description: str = "producing",
) -> int:
    """Send (key, value) pairs in order, wait for every acknowledgement; returns the count.

    ``kafka``: bootstrap servers, or aiokafka client options
    (:func:`app.connections.kafka_client_kwargs`).
    """
    producer = AIOKafkaProducer(
        acks="all", linger_ms=10, max_batch_size=256 * 1024, **_kwargs(kafka)
    )
    await producer.start()
    bar = tqdm(total=total, desc=description, unit="msg", disable=not progress, leave=False)
    count = 0
    try:
        pending: list[asyncio.Future[Any]] = []
        for key, value in records:
            pending.append(await producer.send(topic, value=value, key=key))
            count += 1
            if len(pending) >= MAX_IN_FLIGHT:
                await asyncio.gather(*pending)
                bar.update(len(pending))
                pending.clear()
        await asyncio.gather(*pending)
        bar.update(len(pending))
    finally:
        bar.close()
        await producer.stop()
    return count


def keyed_json(docs: Iterable[dict[str, Any]], key_field: str) -> Iterable[tuple[bytes, bytes]]:
    """(key, value) pairs of JSON documents keyed by one of their fields."""
    for doc in docs:
        yield str(doc[key_field]).encode(), json.dumps(doc, separators=(",", ":")).encode()


async def tail(
    kafka: str | dict[str, Any],
    topic: str,
    *,
    from_beginning: bool,
    limit: int | None,
    timeout_s: float | None,
) -> int:
    """Print each record's value (one JSON per line) until ``limit`` or ``timeout_s`` idle."""
    consumer = AIOKafkaConsumer(
        topic,
        group_id=None,
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
        **_kwargs(kafka),
    )
    await consumer.start()
    printed = 0
    loop = asyncio.get_running_loop()
    last = loop.time()
    try:
        while limit is None or printed < limit:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    value = record.value.decode("utf-8", "replace") if record.value else "null"
                    print(value, flush=True)
                    printed += 1
                    last = loop.time()
            if timeout_s is not None and loop.time() - last > timeout_s:
                break
    finally:
        await consumer.stop()
    return printed
