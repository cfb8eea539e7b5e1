"""Nothing lost, nothing counted twice: crashes between the Redis write and the offset commit."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from app.clock import now_ms
from app.core.catalog import Catalogue
from app.core.catalog_records import Offer
from app.pipeline.config import pipeline_config
from app.pipeline.processor import BatchProcessor
from app.pipeline.records import InboundRecord
from app.ports import OutboundRecord
from app.storage.keys import user_keys
from app.storage.redis_store import RedisProfileStore, RedisStoreConfig
from app.topics import ensure_topics, topic_specs
from tests.support.barrier import markers_applied, produce_markers
from tests.support.kafka_io import as_json, produce, read_topic
from tests.support.worker import WorkerEnv, WorkerProcess, free_port

pytestmark = pytest.mark.integration


class KafkaPublisher:
    """A plain aiokafka publisher (the worker uses faust's producer instead)."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer

    async def publish(self, records: Sequence[OutboundRecord]) -> None:
        futures = [
            await self._producer.send(r.topic, r.value, r.key, headers=list(r.headers))
            for r in records
        ]
        await asyncio.gather(*futures)


def like(event_id: str, user: str, offset_ts: int) -> bytes:
    return as_json(
        {
            "event_id": event_id,
            "user_id": user,
            "type": "like",
            "item_id": "i0",
            "tags": ["sci-fi"],
            "ts": 1_700_000_000_000 + offset_ts,
        }
    )


def miscounted(
    expected: Counter[str], counts: dict[str, int]
) -> tuple[dict[str, int], dict[str, int]]:
    """Per user, events lost (applied fewer times than sent) and counted twice (more)."""
    lost = {u: expected[u] - counts[u] for u in counts if counts[u] < expected[u]}
    doubled = {u: counts[u] - expected[u] for u in counts if counts[u] > expected[u]}
    return lost, doubled


async def total_n_events(client: aioredis.Redis, users: list[str]) -> dict[str, int]:
    async with client.pipeline(transaction=False) as pipe:
        for user in users:
            pipe.hget(user_keys(user).profile, "n_events")
        values = await pipe.execute()
    return {u: int(v or 0) for u, v in zip(users, values, strict=True)}


async def test_a_batch_redelivered_after_a_crash_before_commit_is_applied_once(
    kafka_bootstrap: str,
    redis_client: aioredis.Redis,
    unique: Callable[[str], str],
) -> None:
    env = WorkerEnv(kafka_bootstrap, "unused", unique("crash"))
    s = env.settings()
    await ensure_topics(kafka_bootstrap, topic_specs(s))
    user = f"dave-{env.token}"
    await produce(
        kafka_bootstrap,
        s.topic_user_events,
        [(user.encode(), like(f"e{i}", user, i)) for i in range(5)],
    )
    catalogue = Catalogue()
    catalogue.upsert_offer(
        Offer(offer_id="o1", title="Space", tags=("sci-fi",), value=1.0, channels=("web",))
    )
    store = RedisProfileStore(redis_client, RedisStoreConfig())
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    group = f"group-{env.token}"

    async def consume_and_process_without_commit() -> None:
        consumer = AIOKafkaConsumer(
            s.topic_user_events,
            bootstrap_servers=kafka_bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            records: list[InboundRecord] = []
            deadline = time.monotonic() + 20
            while len(records) < 5 and time.monotonic() < deadline:
                for tp, msgs in (await consumer.getmany(timeout_ms=300)).items():
                    records += [
                        InboundRecord(tp.topic, tp.partition, m.offset, m.key, m.value)
                        for m in msgs
                    ]
            assert len(records) == 5
            processor = BatchProcessor(
                store, KafkaPublisher(producer), catalogue, pipeline_config(s), now_ms
            )
            await processor.process(records)
        finally:
            await consumer.stop()  # "crash": the offsets were never committed

    try:
        await consume_and_process_without_commit()
        await consume_and_process_without_commit()  # redelivered from the same offsets
    finally:
        await producer.stop()

    assert (await total_n_events(redis_client, [user]))[user] == 5
    messages = await read_topic(kafka_bootstrap, s.topic_offers, expect=2, timeout_s=10)
    assert len(messages) == 2  # published, then published again from the stored copy
    ids = {json.loads(m.value)["message_id"] for m in messages}
    assert len(ids) == 1  # the same message id: channel services can drop the repeat


@pytest.mark.timeout(300)  # its own waits allow up to 60 + 90 s on a loaded machine
async def test_a_worker_killed_mid_stream_loses_and_double_counts_nothing(
    kafka_bootstrap: str,
    redis_url: str,
    redis_client: aioredis.Redis,
    unique: Callable[[str], str],
    tmp_path: Path,
) -> None:
    env = WorkerEnv(kafka_bootstrap, redis_url, unique("kill"), extra={"NBO_BATCH_SIZE": "20"})
    s = env.settings()
    await ensure_topics(kafka_bootstrap, topic_specs(s))
    rng = random.Random(7)
    users = [f"u{i}-{env.token}" for i in range(100)]
    records: list[tuple[bytes, bytes]] = []
    expected: Counter[str] = Counter()
    for n in range(6_000):
        user = rng.choice(users)
        records.append((user.encode(), like(f"ev{n}", user, n)))
        expected[user] += 1
        if n % 50 == 0:  # a producer retry: same event id again, must count once
            records.append((user.encode(), like(f"ev{n}", user, n)))
    await produce(kafka_bootstrap, s.topic_user_events, records)

    first = WorkerProcess(env, tmp_path / "worker-1.log").start()
    try:
        deadline = time.monotonic() + 60
        progress = 0
        while time.monotonic() < deadline:
            progress = sum((await total_n_events(redis_client, users)).values())
            if progress >= 500:
                break
            await asyncio.sleep(0.05)
        first.kill()
    finally:
        first.kill()
    at_kill = sum((await total_n_events(redis_client, users)).values())
    assert 0 < at_kill < 6_000, (
        f"the kill must land mid-stream (applied {at_kill}):\n{first.tail()}"
    )

    second = WorkerProcess(env, tmp_path / "worker-2.log").start()
    try:
        # the barrier: a marker after every event, on every partition, must be applied
        markers = await produce_markers(
            kafka_bootstrap, s.topic_user_events, env.partitions, env.token
        )
        assert await markers_applied(redis_client, markers), second.tail()
        counts = await total_n_events(redis_client, users)
    finally:
        second.stop()

    lost, doubled = miscounted(expected, counts)
    assert lost == {} and doubled == {}, second.tail()


@pytest.mark.timeout(300)  # its own waits allow up to 60 + 60 + 90 + 90 s on a loaded machine
async def test_workers_joining_and_leaving_mid_stream_lose_and_double_count_nothing(
    kafka_bootstrap: str,
    redis_url: str,
    redis_client: aioredis.Redis,
    unique: Callable[[str], str],
    tmp_path: Path,
) -> None:
    """Two rebalances while events flow: a second worker joins the group, then the first
    leaves. Each hands partitions over with batches in flight (the batch-delivery consumer
    must stop and resume exactly where the committed offsets say)."""
    env = WorkerEnv(
        kafka_bootstrap, redis_url, unique("rebal"), partitions=6, extra={"NBO_BATCH_SIZE": "20"}
    )
    s = env.settings()
    await ensure_topics(kafka_bootstrap, topic_specs(s))
    users = [f"u{i}-{env.token}" for i in range(60)]
    expected: Counter[str] = Counter()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=5)
    await producer.start()

    async def feed(total: int, per_tick: int) -> None:
        rng = random.Random(11)
        for n in range(total):
            user = rng.choice(users)
            await producer.send(s.topic_user_events, like(f"ev{n}", user, n), user.encode())
            expected[user] += 1
            if n % per_tick == per_tick - 1:
                await producer.flush()
                await asyncio.sleep(0.1)
        await producer.flush()

    async def wait_for(check: Callable[[], bool], what: str, timeout_s: float) -> None:
        for _ in range(int(timeout_s * 10)):
            if check():
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")

    def received(worker: WorkerProcess) -> float:
        try:
            return worker.metrics().get("nbo_events_received", 0.0)
        except OSError:  # not serving yet
            return 0.0

    progress = 0

    async def poll() -> None:
        nonlocal progress
        while True:
            progress = sum((await total_n_events(redis_client, users)).values())
            await asyncio.sleep(0.1)

    first = WorkerProcess(env, tmp_path / "worker-1.log").start()
    second = WorkerProcess(replace(env, web_port=free_port()), tmp_path / "worker-2.log")
    feeding = asyncio.create_task(feed(total=6_000, per_tick=30))  # ~20 s of events
    polling = asyncio.create_task(poll())
    try:
        await wait_for(lambda: progress >= 300, "the first worker to apply events", 60)
        second.start()  # joins: the group rebalances while the first is mid-stream
        await wait_for(lambda: received(second) > 0, "the second worker to receive events", 60)
        first.stop()  # leaves: a second rebalance hands its partitions over
        await feeding
        # the barrier: a marker after every event, on every partition, must be applied
        markers = await produce_markers(
            kafka_bootstrap, s.topic_user_events, env.partitions, env.token
        )
        assert await markers_applied(redis_client, markers), second.tail()
        counts = await total_n_events(redis_client, users)
    finally:
        polling.cancel()
        await asyncio.gather(polling, return_exceptions=True)
        feeding.cancel()
        await producer.stop()
        first.stop()
        second.stop()

    lost, doubled = miscounted(expected, counts)
    assert sum(expected.values()) == 6_000
    assert lost == {} and doubled == {}, f"{first.tail()}\n---\n{second.tail()}"
