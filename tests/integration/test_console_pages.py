"""The console's Person and Simulate pages on the real Kafka and Redis: a user written by a
real worker, looked up with and without ``decisions:read``; a small real events topic
replayed under a candidate policy, with nothing written anywhere."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from agents.console.app import build_console
from agents.console.person import RedisPersonSource
from app.commands.tokens import create_client
from app.core.access import Scope
from app.settings import Settings
from app.storage.keys import user_keys
from tests.integration.test_worker_end_to_end import catalogue_records, event
from tests.support.console_login import log_in
from tests.support.kafka_io import as_json, create_topics_with_catalogue, produce, read_topic
from tests.support.waiting import wait_for
from tests.support.worker import WorkerEnv, WorkerProcess

pytestmark = pytest.mark.integration

TIGHT = """
version = "no-in-app"
[caps.channels]
in_app = [{ max = 0, window = "1d" }]
"""


async def end_offsets(kafka_bootstrap: str, topics: list[str]) -> int:
    """The sum of the end offsets of every partition of ``topics`` (records ever written)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=None)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # of every topic
        partitions = [
            TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()
        ]
        assert partitions
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


@contextlib.asynccontextmanager
async def console_client(settings: Settings, token: str) -> AsyncIterator[TestClient]:
    """The console of ``settings`` as ``nbo console`` builds it (catalogue followed), logged
    in with ``token``."""
    console, lift = build_console(settings)
    person = console.person
    assert isinstance(person, RedisPersonSource)
    follow = asyncio.create_task(person.follow())
    client = TestClient(TestServer(console.application()))
    await client.start_server()
    try:
        response = await log_in(client, token, allow_redirects=False)
        assert response.status == 303
        yield client
    finally:
        follow.cancel()
        await client.close()
        await lift.close()
        await person.close()


async def test_the_person_page_shows_what_a_real_worker_stored(
    kafka_bootstrap: str, redis_url: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    env = WorkerEnv(kafka_bootstrap, redis_url, unique("console"))
    s = env.settings()
    viewer = create_client(env.tokens_file, "viewer", [Scope.CONSOLE])
    await create_topics_with_catalogue(kafka_bootstrap, s, *catalogue_records())
    alice = f"alice-{env.token}"
    consent = {"user_id": alice, "channels": {"email": True, "push": False},
               "ts": int(time.time() * 1000) - 60_000, "tz": "Europe/Paris"}  # fmt: skip
    await produce(kafka_bootstrap, s.topic_user_consent, [(alice.encode(), as_json(consent))])
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        await produce(kafka_bootstrap, s.topic_user_events, [event("a1", alice, "i0")])
        assert await read_topic(kafka_bootstrap, s.topic_offers, expect=1), worker.tail()
        sent = json.loads((await read_topic(kafka_bootstrap, s.topic_offers, expect=1))[0].value)
    finally:
        worker.stop()

    async with console_client(s, env.api_token) as client:

        async def tags_shown() -> bool:  # once the console has read the catalogue
            page = await client.get("/person", params={"user": alice})
            return "<td>sci-fi</td>" in await page.text()

        assert await wait_for(tags_shown, 30)
        page = await client.get("/person", params={"user": alice})
        text = await page.text()
        assert page.status == 200
        assert "Europe/Paris" in text and "No data for this user" not in text
        lead = sent["offers"][0]["offer_id"]
        assert sent["offers"][0]["reason"] in text and lead in text
        assert f"<td>Offer {lead[1:]}</td>" in text  # its title, from the catalogue topic
        assert re.search(r'<span class="yes">sent</span> on ' + sent["channel"], text)
        caps = re.search(r'<table id="caps">(.*?)</table>', text, re.S)
        assert caps is not None
        # the message counts against its channel's caps of the shipped policy
        assert f'<td>{sent["channel"]}</td><td>1d</td><td class="num">1</td>' in caps.group(1)
        nobody = await client.get("/person", params={"user": f"nobody-{env.token}"})
        assert "No data for this user" in await nobody.text()

    async with console_client(s, viewer) as client:
        page = await client.get("/person", params={"user": alice})
        text = await page.text()
        assert page.status == 403 and "decisions:read" in text
        assert "Europe/Paris" not in text and sent["offers"][0]["offer_id"] not in text


async def test_the_simulate_page_replays_a_real_topic_and_writes_nothing(
    kafka_bootstrap: str,
    redis_url: str,
    unique: Callable[[str], str],
    redis_client: aioredis.Redis,
) -> None:
    env = WorkerEnv(kafka_bootstrap, redis_url, unique("console-sim"))
    s = env.settings()
    await create_topics_with_catalogue(kafka_bootstrap, s, *catalogue_records())
    users = [f"u{n}-{env.token}" for n in range(4)]
    now = int(time.time() * 1000)
    events = [
        (
            user.encode(),
            as_json(
                {
                    "event_id": f"{user}-{k}",
                    "user_id": user,
                    "type": "like",
                    "item_id": f"i{k % 4}",
                    "ts": now - (40 - k) * 60_000,
                }
            ),
        )
        for user in users
        for k in range(0, 40, 4)
    ]
    old = (b"old", as_json({"event_id": "old", "user_id": "old", "type": "like",
                           "item_id": "i0", "ts": now - 10 * 3_600_000}))  # fmt: skip
    # a record the broker stamped long before the hours asked for, first in its partition, is
    # not even read: the read starts at the broker's time index (else it would count as one
    # more "older" event)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        stamped = now - 20 * 3_600_000
        for partition in range(env.partitions):
            await producer.send_and_wait(s.topic_user_events, old[1], key=b"older",
                                         partition=partition, timestamp_ms=stamped)  # fmt: skip
    finally:
        await producer.stop()
    await produce(kafka_bootstrap, s.topic_user_events, [old, *events])

    async with console_client(s, env.api_token) as client:
        page = await client.get("/simulate")
        fields = dict(re.findall(r'<input[^>]*name="([^"]+)" value="([^"]*)"', await page.text()))
        fields.update(policy=TIGHT, hours="2", max_events="30")
        response = await client.post("/simulate", data=fields)
        text = await response.text()
        assert response.status == 200, text
        assert "<th>current</th>" not in text and "<th>no-in-app</th>" in text
        # 40 events of the last 2 hours, the newest 30 kept; the 10-hour-old one left out
        assert "30 events of 4 users" in text, text
        assert "1 events older than --hours left out" in text
        assert "10 older events of the last hours left out" in text
        messages = re.search(
            r'<td>messages</td><td class="num">(\d+)</td><td class="num">(\d+)', text
        )
        assert messages is not None and int(messages.group(1)) > 0 == int(messages.group(2))
        chart = re.search(r'src="(/simulate/chart/[^"]+\.png)"', text)
        assert chart is not None and (await client.get(chart.group(1))).status == 200

    assert await end_offsets(kafka_bootstrap, [s.topic_offers, s.topic_decisions]) == 0
    for user in users:
        assert await redis_client.exists(*user_keys(user).all()) == 0
