"""Positive barriers: prove that a worker has processed everything produced before a point,
instead of sleeping and hoping it has.

A marker event goes to every partition of the events topic, after everything produced so far;
each partition is processed in order, so once every marker is applied, every earlier event of
every partition has been processed, and counts read then are final.
"""

from __future__ import annotations

import asyncio
import json
import time

import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from app.storage.keys import user_keys


async def produce_markers(
    kafka_bootstrap: str, topic: str, partitions: int, token: str
) -> list[str]:
    """One marker event (its own user, keyed by it) on each partition of ``topic``; returns
    the marker users."""
    users = [f"marker-{p}-{token}" for p in range(partitions)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for partition, user in enumerate(users):
            body = {"event_id": f"{user}-e", "user_id": user, "type": "view",
                    "item_id": "marker", "ts": int(time.time() * 1000)}  # fmt: skip
            await producer.send_and_wait(
                topic, json.dumps(body).encode(), key=user.encode(), partition=partition
            )
    finally:
        await producer.stop()
    return users


async def markers_applied(
    client: aioredis.Redis,
    users: list[str],
    timeout_s: float = 90.0,
    prefix: str = "nbo",
    secret: bytes | None = None,
) -> bool:
    """Wait until every marker user has a profile in Redis (``False`` on time-out);
    ``secret``: the worker's pseudonym secret, if any."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        async with client.pipeline(transaction=False) as pipe:
            for user in users:
                pipe.hget(user_keys(user, prefix, secret).profile, "n_events")
            values = await pipe.execute()
        if all(v is not None and int(v) >= 1 for v in values):
            return True
        await asyncio.sleep(0.1)
    return False
