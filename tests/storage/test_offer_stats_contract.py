"""One contract, two stores: the Redis offer stats store and its in-memory twin behave alike."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from app.core.events import UserEvent
from app.core.exploration import DAY_MS, OfferStats, OfferStatsUpdate, apply_feedback
from app.ports import OfferStatsStore
from app.storage.memory_offer_stats import MemoryOfferStatsStore
from app.storage.offer_stats import OfferStatsConfig, RedisOfferStatsStore, offer_stats_key
from tests.support.redis_cluster import redis_cluster

H = 7 * DAY_MS
T0 = 1_714_564_800_000
TOPIC = "events"


def stats(impressions: float, clicks: float = 0.0, accepts: float = 0.0, t: int = T0) -> OfferStats:
    return OfferStats(impressions, clicks, accepts, t)


def update(partition: int, first: int, last: int, **offers: OfferStats) -> OfferStatsUpdate:
    return OfferStatsUpdate(TOPIC, partition, first, last, offers)


def close(actual: OfferStats, expected: OfferStats) -> bool:
    counts = (actual.impressions, actual.clicks, actual.accepts)
    want = (expected.impressions, expected.clicks, expected.accepts)
    return actual.t_ms == expected.t_ms and counts == pytest.approx(want, rel=1e-12)


@pytest.fixture(scope="module")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_cluster(tmp_path_factory.mktemp("cluster")) as url:
        yield url


@pytest.fixture(
    params=[
        pytest.param("memory", marks=pytest.mark.unit),
        pytest.param("redis", marks=pytest.mark.integration),
        pytest.param("cluster", marks=pytest.mark.integration),
    ]
)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[OfferStatsStore]:
    if request.param == "memory":
        yield MemoryOfferStatsStore(half_life_ms=H)
        return
    client: aioredis.Redis | RedisCluster
    if request.param == "cluster":
        client = RedisCluster.from_url(request.getfixturevalue("cluster_url"))
    else:
        client = aioredis.Redis.from_url(request.getfixturevalue("redis_url"))
    prefix = f"nbotest{uuid.uuid4().hex[:8]}"
    try:
        yield RedisOfferStatsStore(client, OfferStatsConfig(half_life_ms=H, prefix=prefix))
    finally:
        if request.param == "redis":
            async for key in client.scan_iter(match=f"{prefix}:*"):
                await client.delete(key)
        await client.aclose()


async def test_a_batch_applied_twice_counts_once(store: OfferStatsStore) -> None:
    batch = [update(0, 10, 12, a=stats(3.0, 1.0))]
    first = await store.apply(batch)
    again = await store.apply(batch)
    assert first.applied == {(TOPIC, 0)} and not first.duplicates
    assert again.duplicates == {(TOPIC, 0)} and not again.applied and not again.overlaps
    assert await store.read_all(TOPIC, [0]) == {"a": stats(3.0, 1.0)}


async def test_a_later_batch_of_the_partition_is_added(store: OfferStatsStore) -> None:
    await store.apply([update(0, 10, 12, a=stats(3.0, 1.0))])
    outcome = await store.apply([update(0, 13, 20, a=stats(2.0, 0.0, 1.0), b=stats(1.0))])
    assert outcome.applied == {(TOPIC, 0)}
    assert await store.read_all(TOPIC, [0]) == {"a": stats(5.0, 1.0, 1.0), "b": stats(1.0)}


async def test_a_redelivery_overlapping_written_records_is_refused_with_the_stored_offset(
    store: OfferStatsStore,
) -> None:
    await store.apply([update(0, 10, 12, a=stats(3.0))])
    outcome = await store.apply([update(0, 10, 15, a=stats(5.0))])  # records 10..15 again
    assert dict(outcome.overlaps) == {(TOPIC, 0): 12} and not outcome.applied
    assert outcome.overlaps_of(TOPIC) == {0: 12}
    assert await store.read_all(TOPIC, [0]) == {"a": stats(3.0)}  # nothing written
    redo = await store.apply([update(0, 13, 15, a=stats(2.0))])  # the records after 12
    assert redo.applied == {(TOPIC, 0)}
    assert await store.read_all(TOPIC, [0]) == {"a": stats(5.0)}


async def test_stored_counts_decay_by_half_per_half_life_of_event_time(
    store: OfferStatsStore,
) -> None:
    await store.apply([update(0, 1, 1, a=stats(4.0, 2.0, 2.0, T0 + H))])
    await store.apply([update(0, 2, 2, a=stats(1.0, 0.0, 0.0, T0 + 3 * H))])
    assert await store.read_all(TOPIC, [0]) == {"a": stats(2.0, 0.5, 0.5, T0 + 3 * H)}
    await store.apply([update(0, 3, 3, a=stats(4.0, 0.0, 0.0, T0 + 2 * H))])  # a late batch
    assert await store.read_all(TOPIC, [0]) == {"a": stats(4.0, 0.5, 0.5, T0 + 3 * H)}


async def test_reading_sums_the_partitions_and_ignores_unknown_ones(
    store: OfferStatsStore,
) -> None:
    partitions = list(range(12))  # hash tags of their own: spread over a cluster's nodes
    updates = [update(p, 0, p, a=stats(1.0, t=T0 + p * H)) for p in partitions]
    updates += [OfferStatsUpdate("other", 0, 0, 0, {"a": stats(100.0)})]
    outcome = await store.apply([*updates, update(12, 5, 5, b=stats(2.0, 1.0))])
    assert len(outcome.applied) == 14
    total = sum(2.0 ** -(11 - p) for p in partitions)
    read = await store.read_all(TOPIC, [*partitions, 12, 99])
    assert read.keys() == {"a", "b"}
    assert close(read["a"], stats(total, t=T0 + 11 * H))
    assert read["b"] == stats(2.0, 1.0)
    assert await store.read_all(TOPIC, [99]) == {}
    assert await store.read_all(TOPIC, []) == {}


async def test_stored_stats_equal_the_pure_update_of_the_same_events(
    store: OfferStatsStore,
) -> None:
    kinds = ["offer_impression", "offer_click", "offer_accepted", "offer_dismissed"]
    events = [
        UserEvent(
            event_id=f"e{i}",
            user_id="u",
            type=kinds[i % 4],
            offer_id=f"o{i % 3}",
            ts=T0 + (i * 7_919_000_003) % (20 * DAY_MS),
        )
        for i in range(60)
    ]
    expected: dict[str, OfferStats] = {}
    for start in range(0, 60, 15):  # four batches of one partition
        batch = events[start : start + 15]
        expected = apply_feedback(expected, batch, H)
        await store.apply([update(0, start, start + 14, **apply_feedback({}, batch, H))])
    read = await store.read_all(TOPIC, [0])
    assert read.keys() == expected.keys()
    assert all(close(read[o], expected[o]) for o in expected)


async def test_an_offer_id_may_look_like_the_offset_field(store: OfferStatsStore) -> None:
    await store.apply([update(0, 1, 1, **{"_offset": stats(1.0), "o:x y": stats(2.0)})])
    assert await store.read_all(TOPIC, [0]) == {"_offset": stats(1.0), "o:x y": stats(2.0)}


async def test_two_updates_of_one_partition_in_one_call_are_refused(
    store: OfferStatsStore,
) -> None:
    with pytest.raises(ValueError):
        await store.apply([update(0, 1, 1, a=stats(1.0)), update(0, 2, 2, a=stats(1.0))])


@pytest.mark.integration
async def test_redis_layout_is_one_expiring_hash_per_partition(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    prefix = f"nbotest{uuid.uuid4().hex[:8]}"
    store = RedisOfferStatsStore(
        client, OfferStatsConfig(half_life_ms=H, ttl_s=3_600, prefix=prefix)
    )
    try:
        await store.apply([update(3, 40, 41, a=stats(2.0, 1.0, 0.0))])
        key = offer_stats_key(TOPIC, 3, prefix)
        assert key == f"{prefix}:offer-stats:{{{TOPIC}:3}}"
        assert await client.hgetall(key) == {b"_offset": b"41", b"o:a": f"2 1 0 {T0}".encode()}
        assert 3_500 < await client.ttl(key) <= 3_600
        assert store.round_trips == 1
    finally:
        async for key in client.scan_iter(match=f"{prefix}:*"):
            await client.delete(key)
        await client.aclose()


@pytest.mark.integration
async def test_a_flushed_script_is_loaded_again_and_the_batch_written_once(
    redis_url: str,
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    prefix = f"nbotest{uuid.uuid4().hex[:8]}"
    store = RedisOfferStatsStore(client, OfferStatsConfig(half_life_ms=H, prefix=prefix))
    try:
        await store.apply([update(0, 1, 1, a=stats(1.0))])
        await client.script_flush()
        outcome = await store.apply([update(0, 2, 2, a=stats(1.0)), update(1, 2, 2, a=stats(1.0))])
        assert outcome.applied == {(TOPIC, 0), (TOPIC, 1)}
        assert await store.read_all(TOPIC, [0, 1]) == {"a": stats(3.0)}
    finally:
        async for key in client.scan_iter(match=f"{prefix}:*"):
            await client.delete(key)
        await client.aclose()


async def test_a_recreated_topic_starts_its_offsets_again_and_keeps_the_counts(
    store: OfferStatsStore,
) -> None:
    def tagged(topic_id: str, first: int, last: int, offer: OfferStats) -> OfferStatsUpdate:
        return OfferStatsUpdate(TOPIC, 0, first, last, {"a": offer}, topic_id)

    assert (await store.apply([tagged("old", 10, 12, stats(3.0))])).applied == {(TOPIC, 0)}
    assert (await store.apply([tagged("old", 5, 6, stats(1.0))])).duplicates == {(TOPIC, 0)}
    # the topic was deleted and created again: offset 5 is a new record
    assert (await store.apply([tagged("new", 5, 6, stats(1.0))])).applied == {(TOPIC, 0)}
    assert (await store.apply([tagged("new", 5, 6, stats(1.0))])).duplicates == {(TOPIC, 0)}
    # a worker that does not know the id compares offsets as before
    assert (await store.apply([tagged("", 6, 7, stats(1.0))])).overlaps == {(TOPIC, 0): 6}
    assert close((await store.read_all(TOPIC, [0]))["a"], stats(4.0))
