"""What `nbo simulate` predicts for a candidate policy is what a worker running it sends.

A candidate with a tighter cap (in_app 2 an hour instead of 3) is simulated on a sample of
decision requests; then a real worker running that candidate policy gets the same sample,
round by round (each request its own batch, as in the simulation, where requests two minutes
apart of event time are two batches), and its messages are counted on the offers topic.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from app.core.catalog_records import Item, Offer
from app.pipeline.config import pipeline_config
from app.policy.config import load_policy
from app.simulation.replay import simulate
from tests.support.kafka_io import as_json, create_topics_with_catalogue, produce, read_topic
from tests.support.worker import WorkerEnv, WorkerProcess

pytestmark = pytest.mark.integration

REQUESTS = {"one": 1, "three": 3, "five": 5}
"""Decision requests (in_app) per user, one per round, two minutes of event time apart."""


def tight_policy(path: Path) -> Path:
    text = resources.files("app.policy").joinpath("default_policy.toml").read_text("utf-8")
    loose = 'in_app = [{ max = 3, window = "1h" }'
    assert loose in text
    tight = text.replace(loose, 'in_app = [{ max = 2, window = "1h" }')
    tight = tight.replace('version = "default-2025.2"', 'version = "tight-in-app"')
    path.write_text(tight, encoding="utf-8")
    return path


def catalogue() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    genres = [("sci-fi", "space"), ("romance", "drama"), ("action", "cars")]
    items = [{"item_id": f"i{i}", "tags": list(tags)} for i, tags in enumerate(genres)]
    offers = [
        {"offer_id": f"o{i}", "title": f"Offer {i}", "item_ids": [f"i{i}"], "tags": list(tags),
         "value": 5.0, "channels": ["push", "in_app"]}
        for i, tags in enumerate(genres)
    ]  # fmt: skip
    return items, offers


def rounds(token: str, start_ms: int) -> list[list[tuple[bytes, bytes]]]:
    """Per round, the (key, value) of each user's request in it."""
    out: list[list[tuple[bytes, bytes]]] = []
    for r in range(max(REQUESTS.values())):
        batch = []
        for name, n in REQUESTS.items():
            if r < n:
                user = f"{name}-{token}"
                body = {"event_id": f"{name}-{r}", "user_id": user, "type": "decision_request",
                        "channel": "in_app", "ts": start_ms + r * 120_000}  # fmt: skip
                batch.append((user.encode(), as_json(body)))
        out.append(batch)
    return out


@pytest.fixture
def worker_env(kafka_bootstrap: str, redis_url: str, unique: Callable[[str], str]) -> WorkerEnv:
    return WorkerEnv(kafka_bootstrap, redis_url, unique("sim"))


async def test_the_simulated_tighter_policy_sends_what_a_worker_running_it_sends(
    worker_env: WorkerEnv, tmp_path: Path
) -> None:
    policy = tight_policy(tmp_path / "tight.toml")
    settings = worker_env.settings()
    current = pipeline_config(settings)
    candidate = replace(current, policy=load_policy(policy))
    items, offers = catalogue()
    sample = rounds(worker_env.token, int(time.time() * 1000) - 15 * 60_000)
    report = await asyncio.to_thread(  # simulate runs its own event loop
        simulate,
        [value for batch in sample for _, value in batch],
        [Item.model_validate(i) for i in items],
        [Offer.model_validate(o) for o in offers],
        current,
        candidate,
        warmup_ms=0,
    )
    # the known answer: 1 + 3 + 3 messages at 3 an hour, 1 + 2 + 2 at 2 an hour
    assert (report.current.messages, report.candidate.messages) == (7, 5)
    assert report.candidate.messages_by_channel == {"in_app": 5}

    worker_env.extra["NBO_POLICY_PATH"] = str(policy)
    await create_topics_with_catalogue(
        worker_env.kafka_bootstrap, settings,
        [(i["item_id"].encode(), as_json(i)) for i in items],
        [(o["offer_id"].encode(), as_json(o)) for o in offers],
    )  # fmt: skip
    worker = WorkerProcess(worker_env, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        for r, batch in enumerate(sample, start=1):
            await produce(worker_env.kafka_bootstrap, settings.topic_user_events, batch)
            expected = sum(min(n, r) for n in REQUESTS.values())
            await decided(worker_env, settings.topic_decisions, expected, worker)
        sent = await read_topic(worker_env.kafka_bootstrap, settings.topic_offers, 10_000, 2.0)
    finally:
        worker.stop()
    by_user: dict[str, int] = {}
    for record in sent:
        doc = json.loads(record.value)
        assert doc["channel"] == "in_app"
        by_user[doc["user_id"]] = by_user.get(doc["user_id"], 0) + 1
    assert sum(by_user.values()) == report.candidate.messages, worker.tail()
    token = worker_env.token
    assert by_user == {f"one-{token}": 1, f"three-{token}": 2, f"five-{token}": 2}


async def decided(env: WorkerEnv, topic: str, expected: int, worker: WorkerProcess) -> None:
    """Wait until the worker logged ``expected`` decisions: each round is its own batch."""
    deadline = time.monotonic() + 60
    found = 0
    while time.monotonic() < deadline:
        found = len(await read_topic(env.kafka_bootstrap, topic, 10_000, 0.5))
        if found >= expected:
            assert found == expected, worker.tail()
            return
    raise AssertionError(f"{found} of {expected} decisions after 60 s\n{worker.tail()}")
