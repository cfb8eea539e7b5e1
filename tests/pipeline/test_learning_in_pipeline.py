"""The learning loop inside the pipeline: offer feedback stats, exploration, the holdout."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.core.catalog import Catalogue
from app.core.catalog_records import Item, Offer
from app.core.exploration import ExplorationConfig
from app.core.holdout import CONTROL, group_of
from app.pipeline.config import PipelineConfig
from app.pipeline.processor import BatchProcessor
from app.pipeline.records import InboundRecord
from app.storage.memory_offer_stats import MemoryOfferStatsStore
from app.storage.memory_store import MemoryProfileStore
from tests.policy.builders import NOON
from tests.support.pipeline import deterministic_config
from tests.support.recording import RecordingPublisher

pytestmark = pytest.mark.unit

WEEK = 7 * 86_400_000


def catalogue(n: int = 6) -> Catalogue:
    cat = Catalogue(dim=64)
    cat.upsert_item(Item(item_id="i0", tags=("sci-fi",)))
    for i in range(n):  # equal offers apart from their ids: only exploration separates them
        cat.upsert_offer(Offer(offer_id=f"o{i}", title=f"Offer {i}", tags=("drama",),
                               value=1.0, channels=("web",)))  # fmt: skip
    return cat


def config(weight: float = 0.3, seed: int | None = 7, share: float = 0.0) -> PipelineConfig:
    return deterministic_config(
        offers_topic="nbo",
        dead_letter_topic="dlq",
        decisions_topic="dec",
        events_topic="events",
        events_partitions=2,
        exploration=ExplorationConfig(weight=weight, seed=seed, half_life_ms=WEEK),
        holdout_share=share,
    )


def record(offset: int, body: dict[str, Any], partition: int = 0) -> InboundRecord:
    full = {"event_id": f"e{partition}-{offset}", "ts": NOON, **body}
    key = str(full["user_id"]).encode()  # keyed by user id, as the contract asks
    return InboundRecord("events", partition, offset, key, json.dumps(full).encode())


def feedback(offset: int, kind: str, offer: str, user: str = "fan") -> InboundRecord:
    return record(offset, {"user_id": user, "type": kind, "offer_id": offer, "channel": "web"})


def like(offset: int, user: str) -> InboundRecord:
    return record(offset, {"user_id": user, "type": "like", "item_id": "i0"}, partition=1)


async def test_feedback_events_update_the_offer_stats_once_despite_redelivery() -> None:
    stats = MemoryOfferStatsStore(half_life_ms=WEEK)
    processor = BatchProcessor(MemoryProfileStore(), RecordingPublisher(), catalogue(),
                               config(), lambda: NOON, offer_stats=stats)  # fmt: skip
    batch = [feedback(0, "offer_impression", "o3"), feedback(1, "offer_accepted", "o3"),
             feedback(2, "offer_impression", "o4")]  # fmt: skip
    await processor.process(batch)
    await processor.process(batch)  # redelivered after a crash

    read = await stats.read_all("events", [0, 1])
    assert (read["o3"].impressions, read["o3"].accepts) == (1.0, 1.0)
    assert (read["o4"].impressions, read["o4"].accepts) == (1.0, 0.0)


async def test_the_exploration_part_is_in_every_offer_and_seeded_runs_agree() -> None:
    async def first_message(seed: int) -> dict[str, Any]:
        publisher = RecordingPublisher()
        processor = BatchProcessor(
            MemoryProfileStore(), publisher, catalogue(), config(seed=seed), lambda: NOON,
            offer_stats=MemoryOfferStatsStore(half_life_ms=WEEK),
        )  # fmt: skip
        await processor.process([like(0, "u1")])
        return publisher.values("nbo")[0]

    one, again = await first_message(1), await first_message(1)
    assert one["offers"] == again["offers"]  # deterministic for a seed
    for offer in one["offers"]:
        parts = offer["score_parts"]
        assert "exploration" in parts
        assert offer["score"] == pytest.approx(sum(parts.values()))
    orders = {tuple(o["offer_id"] for o in (await first_message(s))["offers"]) for s in range(8)}
    assert len(orders) > 1  # the draws, not the ids, order equal offers


async def test_feedback_through_the_pipeline_changes_the_seeded_ranking() -> None:
    async def ranking(with_feedback: bool) -> list[str]:
        publisher = RecordingPublisher()
        clock = iter(range(NOON, NOON + 10 * 60_000, 60_000))
        processor = BatchProcessor(
            MemoryProfileStore(), publisher, catalogue(), config(seed=3), lambda: next(clock),
            offer_stats=MemoryOfferStatsStore(half_life_ms=WEEK),
        )  # fmt: skip
        if with_feedback:  # o0 shown 50 times and never taken: its posterior narrows
            await processor.process([feedback(n, "offer_impression", "o0") for n in range(50)])
        else:
            await processor.process([like(99, "other")])
        await processor.process([like(0, "u1")])
        return [o["offer_id"] for o in publisher.values("nbo")[-1]["offers"]]

    assert await ranking(True) != await ranking(False)


async def test_the_control_group_gets_the_popularity_ranking_and_is_labelled() -> None:
    users = [f"user-{n}" for n in range(200)]
    control = [u for u in users if group_of(u, 0.2) == CONTROL]
    personalised = [u for u in users if u not in control][:3]
    assert control, "20 % of 200 users: some are in control"
    cat = catalogue(2)
    cat.upsert_offer(Offer(offer_id="scifi", title="Sci-fi", tags=("sci-fi",), value=0.1,
                           channels=("web",)))  # fmt: skip
    publisher = RecordingPublisher()
    processor = BatchProcessor(MemoryProfileStore(), publisher, cat,
                               config(weight=0, share=0.2), lambda: NOON)  # fmt: skip

    stats = await processor.process([like(n, u) for n, u in enumerate([control[0], *personalised])])

    messages = {m["user_id"]: m for m in publisher.values("nbo")}
    assert messages[control[0]]["group"] == "control"
    assert messages[control[0]]["offers"][0]["offer_id"] != "scifi"  # by value, not taste
    assert all(o["score_parts"]["affinity"] == 0 for o in messages[control[0]]["offers"])
    assert messages[personalised[0]]["group"] == "personalised"
    assert messages[personalised[0]]["offers"][0]["offer_id"] == "scifi"
    groups = {d["user_id"]: d["group"] for d in publisher.values("dec")}
    assert groups[control[0]] == "control"
    assert stats.sent_by_group == {("control", "web"): 1, ("personalised", "web"): 3}


async def test_feedback_is_counted_by_group_type_and_the_channel_the_event_names() -> None:
    processor = BatchProcessor(MemoryProfileStore(), RecordingPublisher(), catalogue(),
                               config(), lambda: NOON)  # fmt: skip
    unnamed = record(2, {"user_id": "fan", "type": "offer_accepted", "offer_id": "o1"})
    stats = await processor.process([feedback(0, "offer_impression", "o3"),
                                     feedback(1, "offer_accepted", "o3"), unnamed])  # fmt: skip
    assert stats.feedback_by_group == {
        ("personalised", "offer_impression", "web"): 1,
        ("personalised", "offer_accepted", "web"): 1,
        ("personalised", "offer_accepted", "unknown"): 1,
    }


async def test_sends_are_counted_per_offer_they_carried() -> None:
    publisher = RecordingPublisher()
    processor = BatchProcessor(MemoryProfileStore(), publisher, catalogue(),
                               config(), lambda: NOON)  # fmt: skip
    stats = await processor.process([like(0, "fan")])
    carried: dict[str, int] = {}
    for message in publisher.values("nbo"):
        for offer in message["offers"]:
            carried[offer["offer_id"]] = carried.get(offer["offer_id"], 0) + 1
    assert carried and stats.sent_by_offer == carried
    assert stats.sent_by_group == {("personalised", "web"): 1}
