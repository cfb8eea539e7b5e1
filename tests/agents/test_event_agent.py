"""The user-events agent through faust's test_context: no broker, the in-memory store twin."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from agents.app import build_worker
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


async def eventually(check: Callable[[], Any], timeout_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not check():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_the_agent_processes_batches_and_dead_letters_bad_values(
    worker: tuple[Worker, MemoryProfileStore, RecordingPublisher],
) -> None:
    built, store, publisher = worker
    agent = built.app.agents["nbo.process-events"]
    async with agent.test_context() as ctx:
        for n in range(3):
            await ctx.put(like(n), key=b"u1")
        await ctx.put(b"not json", key=b"bad")
        await eventually(lambda: len(publisher.records) >= 2)

    dead = publisher.on(built.settings.topic_dead_letters)
    assert [r.key for r in dead] == [b"bad"]
    offers = publisher.on(built.settings.topic_offers)
    assert [r.key for r in offers] == [b"u1"]
    stored = (await store.load(["u1"]))["u1"]
    assert stored.profile is not None and stored.profile.n_events == 3


async def test_the_agent_waits_for_an_unavailable_store_and_loses_nothing(
    worker: tuple[Worker, MemoryProfileStore, RecordingPublisher],
) -> None:
    built, store, publisher = worker
    store.available = False
    agent = built.app.agents["nbo.process-events"]
    async with agent.test_context() as ctx:
        for n in range(4):
            await ctx.put(like(n), key=b"u1")
        await eventually(lambda: built.metrics.batch_retries._value.get() >= 2)
        assert publisher.records == []
        store.available = True
        await eventually(lambda: len(publisher.records) >= 1)

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
        await ctx.put(like(0, "u1"), key=b"u1")
        await ctx.put(like(1, "poison"), key=b"poison")
        await ctx.put(like(2, "u2"), key=b"u2")
        # the barrier: an event after the poison, in a later batch, must be processed
        await eventually(lambda: publisher.on(built.settings.topic_dead_letters) != [])
        await ctx.put(like(3, "u3"), key=b"u3")
        offers = built.settings.topic_offers
        await eventually(lambda: any(r.key == b"u3" for r in publisher.on(offers)))

    (letter,) = publisher.on(built.settings.topic_dead_letters)
    assert letter.key == b"poison"
    assert dict(letter.headers)["nbo.error.class"] == b"ValueError"
    stored = await store.load(["u1", "u2", "u3"])
    assert all(s.profile is not None and s.profile.n_events == 1 for s in stored.values())
    assert built.metrics.batch_retries._value.get() == 0  # isolated, never retried
