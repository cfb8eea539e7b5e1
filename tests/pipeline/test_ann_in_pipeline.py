"""Large catalogues are ranked from approximate candidates, with the same messages."""

from __future__ import annotations

import json

import pytest

from app.core.ann import AnnConfig
from app.core.catalog import Catalogue
from app.core.catalog_records import Item, Offer
from app.pipeline.processor import BatchProcessor
from app.pipeline.records import InboundRecord
from app.storage.memory_store import MemoryProfileStore
from tests.policy.builders import NOON
from tests.support.pipeline import deterministic_config
from tests.support.recording import RecordingPublisher

pytestmark = pytest.mark.unit

GENRES = [f"genre-{g}" for g in range(40)]


def catalogue() -> Catalogue:
    cat = Catalogue(dim=64)
    for g, genre in enumerate(GENRES):
        cat.upsert_item(Item(item_id=f"i{g}", tags=(genre,)))
        for n in range(50):  # 2,000 offers, 50 per genre
            cat.upsert_offer(Offer(offer_id=f"o{g}-{n}", title=f"{genre} {n}", tags=(genre,),
                                   value=1.0 + n / 100, channels=("web",)))  # fmt: skip
    return cat


def events(users: int) -> list[InboundRecord]:
    out = []
    for u in range(users):
        body = {"event_id": f"e{u}", "user_id": f"u{u}", "type": "like",
                "item_id": f"i{u % len(GENRES)}", "ts": NOON}  # fmt: skip
        out.append(InboundRecord("ev", 0, u, f"u{u}".encode(), json.dumps(body).encode()))
    return out


async def run(ann: AnnConfig | None) -> tuple[BatchProcessor, dict[str, list[str]]]:
    publisher = RecordingPublisher()
    cfg = deterministic_config(offers_topic="nbo", ann=ann)
    processor = BatchProcessor(MemoryProfileStore(), publisher, catalogue(), cfg, lambda: NOON)
    await processor.process(events(120))
    offers = {
        json.loads(r.value or b"")["user_id"]: [
            o["offer_id"] for o in json.loads(r.value or b"")["offers"]
        ]
        for r in publisher.records
        if r.topic == "nbo"
    }
    return processor, offers


async def test_a_catalogue_above_the_threshold_is_ranked_from_the_index_like_exact_scoring() -> (
    None
):
    exact_processor, exact = await run(None)
    ann_processor, approx = await run(AnnConfig(min_offers=1_000, candidates=100))

    stats = ann_processor.ann_stats
    assert stats is not None and exact_processor.ann_stats is None
    assert stats.approximate_users == 120 and stats.builds == 1
    assert approx.keys() == exact.keys() and len(exact) == 120
    same = sum(approx[u] == exact[u] for u in exact)
    assert same >= 0.95 * len(exact)  # recall, not identity: a few ties may differ


async def test_a_catalogue_below_the_threshold_stays_exact() -> None:
    processor, _ = await run(AnnConfig(min_offers=10_000))
    stats = processor.ann_stats
    assert stats is not None and (stats.approximate_users, stats.exact_users) == (0, 120)


async def test_warming_up_builds_the_index_before_the_first_batch() -> None:
    cfg = deterministic_config(offers_topic="nbo", ann=AnnConfig(min_offers=1_000))
    processor = BatchProcessor(
        MemoryProfileStore(), RecordingPublisher(), catalogue(), cfg, lambda: NOON
    )
    processor.warm_up()
    stats = processor.ann_stats
    assert stats is not None and stats.builds == 1
    await processor.process(events(10))
    assert stats.builds == 1 and stats.approximate_users == 10  # the same index
