"""A real worker process against the real broker and Redis: events in, offers out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from app.core.dead_letters import HEADER_ERROR_CLASS, HEADER_ORIGINAL_TOPIC
from app.storage.keys import user_keys
from app.topics import ensure_topics, topic_specs
from tests.support.kafka_io import as_json, create_topics_with_catalogue, produce, read_topic
from tests.support.worker import ApiProcess, WorkerEnv, WorkerProcess

pytestmark = pytest.mark.integration

DIM = 64


def catalogue_records() -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    genres = [("sci-fi", "space"), ("romance", "drama"), ("action", "cars"), ("kids", "animation")]
    items, offers = [], []
    for i, tags in enumerate(genres):
        items.append((f"i{i}".encode(), as_json({"item_id": f"i{i}", "tags": list(tags)})))
        offers.append(
            (
                f"o{i}".encode(),
                as_json(
                    {
                        "offer_id": f"o{i}",
                        "title": f"Offer {i}",
                        "item_ids": [f"i{i}"],
                        "tags": list(tags),
                        "value": 5.0,
                        "channels": ["in_app", "email"],
                    }
                ),
            )
        )
    return items, offers


def event(event_id: str, user: str, item: str, kind: str = "like") -> tuple[bytes, bytes]:
    ts = int(time.time() * 1000)
    body = {"event_id": event_id, "user_id": user, "type": kind, "item_id": item, "ts": ts}
    return user.encode(), as_json(body)


@pytest.fixture
def worker_env(kafka_bootstrap: str, redis_url: str, unique: Callable[[str], str]) -> WorkerEnv:
    return WorkerEnv(kafka_bootstrap, redis_url, unique("w"))


async def test_events_become_offer_messages_profiles_and_lookups(
    worker_env: WorkerEnv, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    s = worker_env.settings()
    bootstrap = worker_env.kafka_bootstrap
    await create_topics_with_catalogue(bootstrap, s, *catalogue_records())
    worker = WorkerProcess(worker_env, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        user_a, user_b = f"alice-{worker_env.token}", f"bob-{worker_env.token}"
        await produce(
            bootstrap,
            s.topic_user_events,
            [event("a1", user_a, "i0"), event("a2", user_a, "i0"), event("b1", user_b, "i1")],
        )
        messages = await read_topic(bootstrap, s.topic_offers, expect=2, timeout_s=20)
        by_user = {m.key: m for m in messages}
        assert set(by_user) == {user_a.encode(), user_b.encode()}, worker.tail()
        assert b'"offer_id":"o0","rank":1' in by_user[user_a.encode()].value
        # email needs an opt-in these users never gave: in_app, allowed by default
        assert dict(by_user[user_a.encode()].headers)["nbo.channel"] == b"in_app"

        profile = await redis_client.hgetall(user_keys(user_a).profile)
        assert len(profile[b"vec"]) == DIM * 4 and profile[b"n_events"] == b"2"
        assert await redis_client.ttl(user_keys(user_a).profile) > 0

        api = ApiProcess(worker_env, tmp_path / "api.log").start()
        try:
            api.wait_ready()
            status, body = api.get_json(f"/users/{user_a}/profile")
            assert status == 200 and body["n_events"] == 2
            tags = [t["tag"] for t in body["strongest_tags"]]  # type: ignore[union-attr, index]
            assert set(tags[:2]) == {"sci-fi", "space"}
            status, body = api.get_json(f"/users/{user_b}/offers")
            assert status == 200 and body["offers"][0]["offer_id"] == "o1"  # type: ignore[index]
            assert api.get_json("/users/nobody-at-all/offers")[0] == 404
        finally:
            api.stop()
        assert worker.get_json("/healthz")[0] == 200
        assert worker.get(f"/users/{user_a}/profile")[0] == 404  # not the worker's job
        # the consumer handed the agent whole fetches, never single records
        metrics = worker.get("/metrics")[1].decode()
        assert 'nbo_event_deliveries_total{shape="record"} 0.0' in metrics
        assert 'nbo_event_deliveries_total{shape="fetch"} 0.0' not in metrics
        assert 'nbo_event_deliveries_total{shape="fetch"}' in metrics
    finally:
        worker.stop()


async def test_bad_events_are_dead_lettered_and_the_stream_goes_on(
    worker_env: WorkerEnv, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    s = worker_env.settings()
    bootstrap = worker_env.kafka_bootstrap
    await ensure_topics(bootstrap, topic_specs(s))
    _, offers = catalogue_records()
    await produce(bootstrap, s.topic_offer_catalog, offers)
    worker = WorkerProcess(worker_env, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        user = f"carol-{worker_env.token}"
        bad = [
            (b"k-json", b"{oops"),
            (b"k-type", as_json({"event_id": "t", "user_id": user, "type": "view", "ts": "soon"})),
            (
                b"k-user",
                as_json(
                    {"event_id": "u", "user_id": "../x y", "type": "view", "item_id": "i0", "ts": 1}
                ),
            ),
            (b"k-big", b"{" + b" " * 70_000 + b"}"),
        ]
        await produce(bootstrap, s.topic_user_events, [*bad, event("ok1", user, "i2")])

        dead = await read_topic(bootstrap, s.topic_dead_letters, expect=4, timeout_s=20)
        assert sorted(m.key for m in dead) == sorted(k for k, _ in bad), worker.tail()
        for record in dead:
            headers = dict(record.headers)
            assert headers[HEADER_ORIGINAL_TOPIC] == s.topic_user_events.encode()
            assert headers[HEADER_ERROR_CLASS]
            assert record.value == dict(bad)[record.key]
        offers_out = await read_topic(bootstrap, s.topic_offers, expect=1, timeout_s=20)
        assert [m.key for m in offers_out] == [user.encode()]

        # a duplicated event id leaves n_events unchanged
        await produce(bootstrap, s.topic_user_events, [event("ok1", user, "i2")])
        await produce(bootstrap, s.topic_user_events, [event("ok2", user, "i2")])
        deadline = time.monotonic() + 20
        n_events = b""
        while time.monotonic() < deadline:
            n_events = await redis_client.hget(user_keys(user).profile, "n_events") or b""
            if n_events == b"2":
                break
            await asyncio.sleep(0.2)
        assert n_events == b"2", worker.tail()
    finally:
        worker.stop()
