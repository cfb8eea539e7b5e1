"""The console's production sources against the real broker and Redis: consumer lag per
partition and the dead letters of real topics, the offer statistics and titles the workers
would read."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from agents.console.kafka import KafkaConsoleSource
from agents.console.offer_source import RedisOfferSource
from app.connections import kafka_client_kwargs, redis_client
from app.console.overview import PartitionLag
from app.core.dead_letters import dead_letter_headers
from app.core.exploration import OfferStats, OfferStatsUpdate
from app.storage.offer_stats import OfferStatsConfig, RedisOfferStatsStore
from app.topics import ensure_topics, topic_specs
from tests.support.kafka_io import as_json, produce
from tests.support.worker import WorkerEnv

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


async def commit(kafka: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()})
    finally:
        await consumer.stop()


async def test_lag_per_partition_and_the_newest_dead_letters_come_from_the_broker(
    kafka_bootstrap: str, redis_url: str, unique: Callable[[str], str]
) -> None:
    env = WorkerEnv(kafka_bootstrap, redis_url, unique("console"), partitions=2)
    s = env.settings()
    await ensure_topics(kafka_bootstrap, topic_specs(s))
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for n in range(10):  # 7 on partition 0, 3 on partition 1
            await producer.send_and_wait(s.topic_user_events, b"{}", partition=0 if n < 7 else 1)
        for n in range(4):
            headers = dead_letter_headers(
                "InvalidJson", f"bad json #{n}", s.topic_user_events, 0, n, 1_700_000_000_000 + n
            )
            await producer.send_and_wait(
                s.topic_dead_letters, b"not json", partition=0, headers=headers
            )
    finally:
        await producer.stop()
    await commit(kafka_bootstrap, s.app_id, {TopicPartition(s.topic_user_events, 0): 5})

    source = KafkaConsoleSource.of(s, kafka_client_kwargs(s))
    source.shown = 3
    view = await source.kafka_view()

    assert view.error is None
    assert view.lag == (PartitionLag(0, 7, 5, 2), PartitionLag(1, 3, None, 3))
    assert view.dead_letters.total == 4
    latest = view.dead_letters.latest
    assert [d.message for d in latest] == ["bad json #3", "bad json #2", "bad json #1"]
    assert latest[0].error_class == "InvalidJson"
    assert latest[0].original == f"{s.topic_user_events}/0@3"


async def test_the_offer_statistics_are_summed_over_partitions_with_the_catalogue_titles(
    kafka_bootstrap: str, redis_url: str, unique: Callable[[str], str]
) -> None:
    env = WorkerEnv(kafka_bootstrap, redis_url, unique("console-offers"), partitions=2)
    s = env.settings()
    await ensure_topics(kafka_bootstrap, topic_specs(s))
    offer = {"offer_id": "o1", "title": "Sci-fi weekend", "tags": ["sci-fi"], "value": 1.0,
             "channels": ["push"]}  # fmt: skip
    await produce(kafka_bootstrap, s.topic_offer_catalog, [(b"o1", as_json(offer))])
    redis = redis_client(s)
    store = RedisOfferStatsStore(redis, OfferStatsConfig(prefix=s.redis_prefix))
    t = 1_700_000_000_000
    try:
        await store.apply(
            [
                OfferStatsUpdate(s.topic_user_events, 0, 0, 3, {"o1": OfferStats(3, 1, 1, t)}),
                OfferStatsUpdate(s.topic_user_events, 1, 0, 1, {"o1": OfferStats(2, 0, 1, t)}),
            ]
        )
        source = RedisOfferSource(
            store, s.topic_user_events, 2, s.topic_offer_catalog, kafka_client_kwargs(s)
        )
        data = await source.offer_data()
    finally:
        for partition in (0, 1):
            await redis.delete(store.key(s.topic_user_events, partition))
        await redis.aclose()

    assert data.error is None and data.partitions == 2
    assert data.titles == {"o1": "Sci-fi weekend"}
    o1 = data.stats["o1"]
    assert (o1.impressions, o1.clicks, o1.accepts) == (5.0, 1.0, 2.0)
