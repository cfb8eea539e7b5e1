"""Offsets belong to one incarnation of user-events: a topic deleted and created again under the
same name (its offsets start again at 0) has its events applied, not skipped as already seen."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from app.storage.keys import user_keys
from app.topic_identity import fetch_topic_ids
from tests.support.barrier import markers_applied, produce_markers
from tests.support.kafka_io import as_json, create_topics_with_catalogue, produce
from tests.support.waiting import wait_for
from tests.support.worker import WorkerEnv, WorkerProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def worker_env(kafka_bootstrap: str, redis_url: str, unique: Callable[[str], str]) -> WorkerEnv:
    return WorkerEnv(kafka_bootstrap, redis_url, unique("recreated"))


def like(user: str, n: int) -> tuple[bytes, bytes]:
    body = {"event_id": f"{user}-{n}", "user_id": user, "type": "like", "item_id": "i0",
            "ts": int(time.time() * 1000)}  # fmt: skip
    return user.encode(), as_json(body)


async def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    """Create ``topic`` and wait until the broker gives its id."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    kwargs = {"bootstrap_servers": bootstrap}

    async def listed() -> bool:
        return not await _absent(kwargs, topic)

    assert await wait_for(listed, timeout_s=30), f"{topic} was never listed"


async def recreate(bootstrap: str, topic: str, partitions: int) -> None:
    """Delete ``topic`` and, once the broker no longer lists it, create it again."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()
    kwargs = {"bootstrap_servers": bootstrap}
    assert await wait_for(lambda: _absent(kwargs, topic), timeout_s=60), f"{topic} never went"
    deadline = time.monotonic() + 60
    while True:
        try:
            await create_topic(bootstrap, topic, partitions)
            return
        except TopicAlreadyExistsError:  # the deletion is still being finished
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def _absent(kwargs: dict[str, str], topic: str) -> bool:
    return topic not in await fetch_topic_ids(kwargs, [topic])


async def test_a_topic_created_again_has_a_new_topic_id(
    kafka_bootstrap: str, unique: Callable[[str], str]
) -> None:
    topic = unique("topic-id")
    await create_topic(kafka_bootstrap, topic, 2)
    kwargs = {"bootstrap_servers": kafka_bootstrap}
    first = await fetch_topic_ids(kwargs, [topic, unique("absent")])
    assert list(first) == [topic] and len(first[topic]) == 22  # Kafka's text form
    await recreate(kafka_bootstrap, topic, 2)
    second = await fetch_topic_ids(kwargs, [topic])
    assert second[topic] != first[topic]


async def test_events_of_a_recreated_topic_are_applied_not_skipped_as_seen(
    worker_env: WorkerEnv, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    s = worker_env.settings()
    bootstrap = worker_env.kafka_bootstrap
    item = (b"i0", as_json({"item_id": "i0", "tags": ["drama"]}))
    offer = (b"o0", as_json({"offer_id": "o0", "title": "o0", "tags": ["drama"], "value": 1.0,
                             "channels": ["web"]}))  # fmt: skip
    await create_topics_with_catalogue(bootstrap, s, [item], [offer])
    users = [f"u{n}-{worker_env.token}" for n in range(6)]
    profile_keys = [user_keys(u).profile for u in users]

    first = WorkerProcess(worker_env, tmp_path / "first.log").start()
    try:
        first.wait_ready()
        await produce(bootstrap, s.topic_user_events, [like(u, n) for n in range(5) for u in users])
        markers = await produce_markers(
            bootstrap, s.topic_user_events, s.user_events_partitions, f"{worker_env.token}-a"
        )
        assert await markers_applied(redis_client, markers), first.tail()
    finally:
        first.stop()
    old_ids = {await redis_client.hget(k, "tid") for k in profile_keys}
    assert [int(await redis_client.hget(k, "n_events") or 0) for k in profile_keys] == [5] * 6
    assert len(old_ids) == 1 and None not in old_ids

    await recreate(bootstrap, s.topic_user_events, s.user_events_partitions)
    second = WorkerProcess(worker_env, tmp_path / "second.log").start()
    try:
        second.wait_ready()
        # offsets 0.. again, below every offset stored for these users
        await produce(
            bootstrap, s.topic_user_events, [like(u, n) for n in range(5, 8) for u in users]
        )
        markers = await produce_markers(
            bootstrap, s.topic_user_events, s.user_events_partitions, f"{worker_env.token}-b"
        )
        assert await markers_applied(redis_client, markers), second.tail()
        n_events = [int(await redis_client.hget(k, "n_events") or 0) for k in profile_keys]
        assert n_events == [8] * 6, second.tail()
        new_ids = {await redis_client.hget(k, "tid") for k in profile_keys}
        assert new_ids.isdisjoint(old_ids) and len(new_ids) == 1

        async def voided_counted() -> bool:
            # the batch's metrics are recorded once its messages are published, after its
            # Redis commit: the markers in Redis come first
            return second.metrics().get("nbo_offsets_of_earlier_topic") == 6

        assert await wait_for(voided_counted, timeout_s=30), second.metrics()
        # a producer's retry of an event of the new topic is still caught, by its id
        await produce(bootstrap, s.topic_user_events, [like(u, 5) for u in users])
        markers = await produce_markers(
            bootstrap, s.topic_user_events, s.user_events_partitions, f"{worker_env.token}-c"
        )
        assert await markers_applied(redis_client, markers), second.tail()
        assert [int(await redis_client.hget(k, "n_events") or 0) for k in profile_keys] == [8] * 6
    finally:
        second.stop()
