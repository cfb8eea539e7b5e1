"""Repeatable items in a real worker, driven through the shared broker and checked in Redis.

A person buys milk (repeatable, a 7-day prior from the catalogue) and a TV (not repeatable)
30 days ago. A decision request 2 days after the purchases gets neither back; one dated now,
long past milk's due time, gets milk with the restock reason and still no TV. The cycle is
stored in the person's profile hash (``rs``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from app.storage.keys import user_keys
from tests.support.kafka_io import as_json, create_topics_with_catalogue, produce, read_topic
from tests.support.worker import WorkerEnv, WorkerProcess

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000
ITEMS = [
    {"item_id": "milk", "title": "Milk", "tags": ["grocery", "dairy"], "repeatable": True,
     "restock_days": 7},
    {"item_id": "tv", "title": "TV", "tags": ["electronics"]},
    {"item_id": "book", "title": "Book", "tags": ["books"]},
    {"item_id": "tea", "title": "Tea", "tags": ["grocery"]},
]  # fmt: skip


def catalogue() -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    items = [(i["item_id"].encode(), as_json(i)) for i in ITEMS]
    offers = []
    for i in ITEMS:
        offer = {"offer_id": f"o-{i['item_id']}", "title": i["title"], "item_ids": [i["item_id"]],
                 "tags": i["tags"], "value": 1.0, "channels": ["web"]}  # fmt: skip
        offers.append((offer["offer_id"].encode(), as_json(offer)))
    return items, offers


@pytest.fixture
def worker_env(kafka_bootstrap: str, redis_url: str, unique: Callable[[str], str]) -> WorkerEnv:
    return WorkerEnv(kafka_bootstrap, redis_url, unique("restock"))


async def test_a_due_repeatable_item_comes_back_with_a_restock_reason_and_a_tv_never_does(
    worker_env: WorkerEnv, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    settings = worker_env.settings()
    bootstrap = worker_env.kafka_bootstrap
    await create_topics_with_catalogue(bootstrap, settings, *catalogue())
    user = f"shopper-{worker_env.token}"
    now = int(time.time() * 1000)
    bought = now - 30 * DAY_MS
    n = 0

    async def send(kind: str, ts: int, **extra: Any) -> str:
        nonlocal n
        n += 1
        body = {"event_id": f"ev{n}", "user_id": user, "type": kind, "ts": ts, **extra}
        await produce(bootstrap, settings.topic_user_events, [(user.encode(), as_json(body))])
        return body["event_id"]

    async def answer(event_id: str, timeout_s: float = 60.0) -> dict[str, str]:
        """The offers (id -> reason) of the message triggered by ``event_id``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = await read_topic(bootstrap, settings.topic_offers, 10_000, 1.0)
            for record in found:
                message = json.loads(record.value)
                if record.key == user.encode() and message["trigger"]["event_id"] == event_id:
                    return {o["offer_id"]: o["reason"] for o in message["offers"]}
            await asyncio.sleep(0.3)
        raise AssertionError(f"no message for {event_id}: {worker.tail()}")

    worker = WorkerProcess(worker_env, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        await send("purchase", bought, item_id="milk")
        await send("purchase", bought + 1_000, item_id="tv")
        profile_key = user_keys(user).profile

        async def cycle_stored() -> Any:
            return await redis_client.hget(profile_key, "rs")

        deadline = time.monotonic() + 60
        stored = await cycle_stored()
        while stored is None and time.monotonic() < deadline:
            await asyncio.sleep(0.3)
            stored = await cycle_stored()
        assert stored is not None, worker.tail()
        assert json.loads(stored) == [["milk", bought, 0, 1]]  # the TV has no cycle

        early = await answer(await send("decision_request", bought + 2 * DAY_MS, channel="web"))
        assert early and "o-milk" not in early and "o-tv" not in early, early

        due = await answer(await send("decision_request", now, channel="web"))
        assert due.get("o-milk") == "Time to restock Milk?", due
        assert "o-tv" not in due, due
    finally:
        worker.stop()
