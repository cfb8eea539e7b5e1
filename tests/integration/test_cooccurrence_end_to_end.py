"""A real worker picks up item neighbours from their topic and ranks by co-occurrence."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.core.cooccurrence.table import neighbours_record
from app.topics import ensure_topics, topic_specs
from tests.support.kafka_io import as_json, produce, read_topic
from tests.support.worker import WorkerEnv, WorkerProcess

pytestmark = pytest.mark.integration

FILMS = {
    "alien": ("Alien", ["sci-fi", "horror"]),
    "aliens": ("Aliens", ["action", "war"]),  # chosen next by Alien's viewers, unlike it by tags
    "solaris": ("Solaris", ["sci-fi", "horror"]),  # alike by tags
    "amelie": ("Amelie", ["romance", "comedy"]),
}


@pytest.fixture
def worker_env(kafka_bootstrap: str, redis_url: str, unique: Callable[[str], str]) -> WorkerEnv:
    env = WorkerEnv(kafka_bootstrap, redis_url, unique("cooc"))
    env.extra = {
        "NBO_EXPLORATION_WEIGHT": "0",  # no random part: the ranking is the scores'
        "NBO_W_AFFINITY": "0.3",
        "NBO_W_COOCCURRENCE": "0.5",
    }
    return env


def event(event_id: str, user: str, item: str, kind: str) -> tuple[bytes, bytes]:
    body = {"event_id": event_id, "user_id": user, "type": kind, "item_id": item,
            "ts": int(time.time() * 1000)}  # fmt: skip
    return user.encode(), as_json(body)


def wait_for_neighbours(worker: WorkerProcess, items: float, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if worker.metrics().get("nbo_neighbour_items") == items:
            return
        time.sleep(0.1)
    raise AssertionError(f"the worker never held {items} items with neighbours:\n{worker.tail()}")


async def test_neighbours_on_their_topic_change_the_ranking_of_a_user_who_chose_the_item(
    worker_env: WorkerEnv, tmp_path: Path
) -> None:
    s = worker_env.settings()
    bootstrap = worker_env.kafka_bootstrap
    await ensure_topics(bootstrap, topic_specs(s))
    items = [
        (k.encode(), as_json({"item_id": k, "title": title, "tags": tags}))
        for k, (title, tags) in FILMS.items()
    ]
    offers = [
        (f"o-{k}".encode(), as_json({"offer_id": f"o-{k}", "title": title, "item_ids": [k],
                                     "tags": tags, "value": 1.0, "channels": ["in_app"]}))
        for k, (title, tags) in FILMS.items()
    ]  # fmt: skip
    await produce(bootstrap, s.topic_item_catalog, items)
    await produce(bootstrap, s.topic_offer_catalog, offers)
    user = f"ripley-{worker_env.token}"
    worker = WorkerProcess(worker_env, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        await produce(bootstrap, s.topic_user_events, [event("e1", user, "alien", "purchase")])
        [before] = await read_topic(bootstrap, s.topic_offers, expect=1, timeout_s=20)
        first: dict[str, Any] = json.loads(before.value)["offers"][0]
        assert first["offer_id"] == "o-solaris", worker.tail()  # alike by tags
        assert "cooccurrence" not in first["score_parts"]  # no neighbours yet: the part is off

        record = neighbours_record("alien", [("aliens", 1.0), ("amelie", 0.1)])
        await produce(bootstrap, s.topic_item_neighbours, [(b"alien", record)])
        wait_for_neighbours(worker, 1.0)
        await produce(bootstrap, s.topic_user_events, [event("e2", user, "alien", "like")])
        messages = await read_topic(bootstrap, s.topic_offers, expect=2, timeout_s=20)
        assert len(messages) == 2, worker.tail()
        after = json.loads(messages[-1].value)["offers"]
        assert after[0]["offer_id"] == "o-aliens"
        assert after[0]["score_parts"]["cooccurrence"] == pytest.approx(0.5)
        assert after[0]["reason"] == "Because you chose Alien"

        # a tombstone removes the neighbours again
        await produce(bootstrap, s.topic_item_neighbours, [(b"alien", None)])
        wait_for_neighbours(worker, 0.0)
    finally:
        worker.stop()
