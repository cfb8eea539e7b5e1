"""The user-events agent through faust's test_context: no broker, the in-memory store twin.

Records arrive as the Kafka consumer delivers them, whole fetches (:class:`FetchedBatch`) put on
the agent's channel; one test covers a plain faust event (other transports)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from faust.types import TP, Message

from agents.app import build_worker
from agents.fetches import FetchedBatch
from agents.worker import Worker
from app.core.catalog_records import Offer
from app.pipeline.config import pipeline_config
from app.pipeline.processor import BatchProcessor
from app.settings import Settings
from app.storage.memory_store import MemoryProfileStore
from tests.pipeline.test_isolation import RefusesOneUser
from tests.pipeline.test_processor import NOW, RecordingPublisher

pytestmark = pytest.mark.agents


@pytest.fixture
async def worker() -> AsyncIterator[tuple[Worker, MemoryProfileStore, RecordingPublisher]]:
    settings = Settings(
        kafka_bootstrap="127.0.0.1:1", batch_size=10, batch_within_s=0.02, web_port=16999
    )
    built = build_worker(settings)
    built.catalogue.upsert_offer(
        Offer(offer_id="o1", title="Space", tags=("sci-fi",), value=2.0, channels=("web",))
    )
    store, publisher = MemoryProfileStore(), RecordingPublisher()
    built.processor = BatchProcessor(
        store, publisher, built.catalogue, pipeline_config(settings), lambda: NOW
    )
    built.feed.ready.set()
    built.app.finalize()
    built.app.flow_control.resume()
    yield built, store, publisher
    await built.redis.aclose()


def like(n: int, user: str = "u1") -> bytes:
    body = {
        "event_id": f"e{n}",
        "user_id": user,
        "type": "like",
        "item_id": "unknown",
        "tags": ["sci-fi"],
        "ts": NOW + n,
    }
    return json.dumps(body).encode()


class Fetches:
    """Puts whole fetches of (key, value) records on the agent's channel, offsets counting up."""

    def __init__(self, built: Worker, ctx: Any) -> None:
        self.built, self.ctx, self.offset = built, ctx, 0
        # acknowledgements counted for the topic, as once the consumer subscribes to it
        built.app.topics._acking_topics.add(built.settings.topic_user_events)

    async def put(
        self, *records: tuple[bytes, bytes], generation: int | None = None
    ) -> FetchedBatch:
        topic = self.built.settings.topic_user_events
        messages = []
        for key, value in records:
            messages.append(
                Message(topic, 0, self.offset, 0.0, 0, None, key, value, None, tp=TP(topic, 0))
            )
            self.offset += 1
        app = self.built.app
        batch = FetchedBatch(
            messages, app.consumer_generation_id if generation is None else generation
        )
        await self.ctx.stream().channel.put(batch)
        return batch


async def eventually(check: Callable[[], Any], timeout_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not check():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_the_agent_processes_whole_fetches_and_dead_letters_bad_values(
    worker: tuple[Worker, MemoryProfileStore, RecordingPublisher],
) -> None:
    built, store, publisher = worker
    agent = built.app.agents["nbo.process-events"]
    async with agent.test_context() as ctx:
        fetches = Fetches(built, ctx)
        first = await fetches.put((b"u1", like(0)), (b"u1", like(1)))
        second = await fetches.put((b"u1", like(2)), (b"bad", b"not json"))
        await eventually(lambda: all(m.acked for m in second.messages))

    assert all(m.acked for m in first.messages)
    assert not built.app.consumer._unacked_messages  # nothing left in flight
    assert sorted(built.app.consumer._acked[TP(built.settings.topic_user_events, 0)]) == [
        0,
        1,
        2,
        3,
    ]
    dead = publisher.on(built.settings.topic_dead_letters)
    assert [r.key for r in dead] == [b"bad"]
    offers = publisher.on(built.settings.topic_offers)
    assert [r.key for r in offers] == [b"u1"]
    stored = (await store.load(["u1"]))["u1"]
    assert stored.profile is not None and stored.profile.n_events == 3


async def test_fetches_queued_together_are_processed_as_one_batch(
    worker: tuple[Worker, MemoryProfileStore, RecordingPublisher],
) -> None:
    built, store, _ = worker
    agent = built.app.agents["nbo.process-events"]
    async with agent.test_context() as ctx:
        fetches = Fetches(built, ctx)
        queued = [await fetches.put((f"u{n}".encode(), like(n, f"u{n}"))) for n in range(6)]
        await eventually(lambda: all(m.acked for b in queued for m in b.messages))

    # the test's channel holds them before the agent runs: at most two batches (10 records each)
    (count,) = [
        sample.value
        for sample in built.metrics.batch_seconds.collect()[0].samples
        if sample.name.endswith("_count")
    ]
    assert 1 <= count <= 2
    users = [f"u{n}" for n in range(6)]
    assert all(s.profile is not None for s in (await store.load(users)).values())


async def test_a_fetch_of_an_earlier_generation_is_dropped_unacknowledged(
    worker: tuple[Worker, MemoryProfileStore, RecordingPublisher],
) -> None:
    built, store, _ = worker
    agent = built.app.agents["nbo.process-events"]
    async with agent.test_context() as ctx:
        fetches = Fetches(built, ctx)
        stale = await fetches.put((b"old", like(0, "old")), generation=-1)
        barrier = await fetches.put((b"u1", like(1)))
        await eventually(lambda: all(m.acked for m in barrier.messages))

    assert not any(m.acked for m in stale.messages)
    assert not set(stale.messages) & set(built.app.consumer._unacked_messages)
    assert (await store.load(["old"]))["old"].profile is None


async def test_the_agent_waits_for_an_unavailable_store_and_loses_nothing(
    worker: tuple[Worker, MemoryProfileStore, RecordingPublisher],
) -> None:
    built, store, publisher = worker
    store.available = False
    agent = built.app.agents["nbo.process-events"]
    async with agent.test_context() as ctx:
        fetches = Fetches(built, ctx)
        batch = await fetches.put(*((b"u1", like(n)) for n in range(4)))
        await eventually(lambda: built.metrics.batch_retries._value.get() >= 2)
        assert publisher.records == []
        assert not any(m.acked for m in batch.messages)  # not durable yet: not acknowledged
        store.available = True
        await eventually(lambda: all(m.acked for m in batch.messages))

    assert len(publisher.records) >= 1
    stored = (await store.load(["u1"]))["u1"]
    assert stored.profile is not None and stored.profile.n_events == 4


async def test_a_record_that_makes_processing_fail_is_dead_lettered_and_the_stream_goes_on(
    worker: tuple[Worker, MemoryProfileStore, RecordingPublisher],
) -> None:
    built, _, publisher = worker
    store = RefusesOneUser("poison")
    built.processor = BatchProcessor(
        store, publisher, built.catalogue, pipeline_config(built.settings), lambda: NOW
    )
    agent = built.app.agents["nbo.process-events"]
    async with agent.test_context() as ctx:
        fetches = Fetches(built, ctx)
        await fetches.put(
            (b"u1", like(0, "u1")), (b"poison", like(1, "poison")), (b"u2", like(2, "u2"))
        )
        # the barrier: an event after the poison, in a later batch, must be processed
        await eventually(lambda: publisher.on(built.settings.topic_dead_letters) != [])
        barrier = await fetches.put((b"u3", like(3, "u3")))
        await eventually(lambda: all(m.acked for m in barrier.messages))

    (letter,) = publisher.on(built.settings.topic_dead_letters)
    assert letter.key == b"poison"
    assert dict(letter.headers)["nbo.error.class"] == b"ValueError"
    stored = await store.load(["u1", "u2", "u3"])
    assert all(s.profile is not None and s.profile.n_events == 1 for s in stored.values())
    assert built.metrics.batch_retries._value.get() == 0  # isolated, never retried


async def test_a_plain_faust_event_is_processed_on_its_own(
    worker: tuple[Worker, MemoryProfileStore, RecordingPublisher],
) -> None:
    built, store, publisher = worker
    agent = built.app.agents["nbo.process-events"]
    async with agent.test_context() as ctx:
        await ctx.put(like(0), key=b"u1")  # waits until the agent processed it
        await ctx.put(b"not json", key=b"bad")

    assert [r.key for r in publisher.on(built.settings.topic_dead_letters)] == [b"bad"]
    stored = (await store.load(["u1"]))["u1"]
    assert stored.profile is not None and stored.profile.n_events == 1


async def test_a_rebalance_waits_for_the_fetch_in_hand_not_for_those_queued_behind_it(
    worker: tuple[Worker, MemoryProfileStore, RecordingPublisher],
) -> None:
    built, store, _ = worker
    store.available = False  # the agent is stuck on its first fetch until the store is back
    consumer = built.app.consumer
    agent = built.app.agents["nbo.process-events"]
    async with agent.test_context() as ctx:
        fetches = Fetches(built, ctx)
        in_hand = await fetches.put((b"u1", like(0)))
        await eventually(lambda: built.metrics.batch_retries._value.get() >= 1)
        queued = await fetches.put((b"u2", like(1, "u2")))
        # what a rebalance's wait_empty waits for: the fetch the agent holds, only
        assert set(consumer._unacked_messages) == set(in_hand.messages)
        built.app.flow_control.suspend()  # the rebalance begins
        store.available = True
        await eventually(lambda: not consumer._unacked_messages)

    assert all(m.acked for m in in_hand.messages)  # finished and acknowledged
    assert not any(m.acked for m in queued.messages)  # dropped: fetched again after the seek
    assert (await store.load(["u2"]))["u2"].profile is None
