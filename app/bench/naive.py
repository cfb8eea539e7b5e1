"""The first draft: our own work, one event at a time (one Redis round trip and one scoring
call per event, one awaited send per message), as a child process ``python -m app.bench.naive``.

It uses the same core, store and catalogue as the worker, so the difference measured is the
batching alone. It drains until ``--expect`` records or ``--budget-s`` seconds, then prints
``{"count", "first_ms", "done_ms"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from app.bench.measure import own_peak_rss_bytes
from app.clock import now_ms
from app.core.catalog import Catalogue
from app.core.catalog_records import decode_item, decode_offer
from app.pipeline.config import pipeline_config
from app.pipeline.processor import BatchProcessor
from app.pipeline.records import InboundRecord
from app.ports import OutboundRecord
from app.settings import load_settings, redis_url_or_local
from app.storage.redis_store import RedisProfileStore, RedisStoreConfig


class AwaitEachPublisher:
    """Sends and awaits each record on its own (what a first draft does)."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer

    async def publish(self, records: Sequence[OutboundRecord]) -> None:
        for r in records:
            await self._producer.send_and_wait(r.topic, r.value, r.key, headers=list(r.headers))


async def _load_catalogue(bootstrap: str, items: str, offers: str, dim: int) -> Catalogue:
    catalogue = Catalogue(dim=dim)
    consumer = AIOKafkaConsumer(
        items, offers, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        idle = 0
        while idle < 3:
            batches = await consumer.getmany(timeout_ms=300)
            idle = 0 if batches else idle + 1
            for tp, records in batches.items():
                for m in records:
                    if m.value is None:
                        continue
                    if tp.topic == items:
                        catalogue.upsert_item(decode_item(m.value))
                    else:
                        catalogue.upsert_offer(decode_offer(m.value))
    finally:
        await consumer.stop()
    return catalogue


async def naive(bootstrap: str, group: str, expect: int, budget_s: float) -> dict[str, float]:
    settings = load_settings()
    catalogue = await _load_catalogue(
        bootstrap, settings.topic_item_catalog, settings.topic_offer_catalog, settings.vector_dim
    )
    redis = aioredis.Redis.from_url(redis_url_or_local(settings))
    store = RedisProfileStore(
        redis, RedisStoreConfig(dim=settings.vector_dim, prefix=settings.redis_prefix)
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    consumer = AIOKafkaConsumer(
        settings.topic_user_events,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await producer.start()
    await consumer.start()
    processor = BatchProcessor(
        store, AwaitEachPublisher(producer), catalogue, pipeline_config(settings), now_ms
    )
    count, first = 0, 0.0
    try:
        while count < expect and (not first or time.time() - first < budget_s):
            m = await consumer.getone()
            first = first or time.time()
            record = InboundRecord(m.topic, m.partition, m.offset, m.key, m.value)
            await processor.process([record])
            count += 1
    finally:
        await consumer.stop()
        await producer.stop()
        await redis.aclose()
    return {
        "count": count,
        "first_ms": first * 1000,
        "done_ms": time.time() * 1000,
        "peak_rss_bytes": own_peak_rss_bytes(),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app.bench.naive")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--budget-s", type=float, default=30.0)
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(naive(args.bootstrap, args.group, args.expect, args.budget_s))))


if __name__ == "__main__":
    main()
