"""The co-occurrence part inside the pipeline: neighbours of a user's recent items, on the
in-memory store twin."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.core.catalog import Catalogue
from app.core.catalog_records import Item, Offer
from app.core.cooccurrence.table import NeighbourTable
from app.core.defaults import COOCCURRENCE_EXPONENT
from app.core.holdout import CONTROL, group_of
from app.core.scoring import ScoringConfig
from app.pipeline.config import PipelineConfig
from app.pipeline.processor import BatchProcessor
from app.pipeline.records import InboundRecord
from app.storage.memory_store import MemoryProfileStore
from tests.policy.builders import NOON
from tests.support.pipeline import deterministic_config
from tests.support.recording import RecordingPublisher

pytestmark = pytest.mark.unit

TAGS = {
    "alien": ("sci-fi", "horror"),
    "aliens": ("action", "war"),  # what people watch after Alien: nothing alike by tags
    "solaris": ("sci-fi", "horror"),  # alike by tags
    "amelie": ("romance", "comedy"),
    "heat": ("crime", "drama"),
}


def catalogue() -> Catalogue:
    cat = Catalogue(dim=64)
    for item, tags in TAGS.items():
        cat.upsert_item(Item(item_id=item, title=item.title(), tags=tags))
        cat.upsert_offer(Offer(offer_id=f"o-{item}", title=item.title(), item_ids=(item,),
                               tags=tags, value=1.0, channels=("web",)))  # fmt: skip
    return cat


def config(w_cooccurrence: float = 0.5, share: float = 0.0) -> PipelineConfig:
    return deterministic_config(
        offers_topic="nbo",
        dead_letter_topic="dlq",
        decisions_topic="dec",
        scoring=ScoringConfig(w_affinity=0.3, w_cooccurrence=w_cooccurrence),
        holdout_share=share,
    )


def neighbours() -> NeighbourTable:
    table = NeighbourTable()
    table.upsert("alien", [("aliens", 1.0), ("heat", 0.2)])
    return table


def event(offset: int, item: str, kind: str = "purchase", user: str = "ripley") -> InboundRecord:
    body = {"event_id": f"e{offset}", "user_id": user, "type": kind, "item_id": item,
            "ts": NOON + offset}  # fmt: skip
    return InboundRecord("events", 0, offset, user.encode(), json.dumps(body).encode())


async def top_offers(
    table: NeighbourTable | None, cfg: PipelineConfig, *batches: list[InboundRecord]
) -> list[dict[str, Any]]:
    publisher = RecordingPublisher()
    processor = BatchProcessor(MemoryProfileStore(), publisher, catalogue(), cfg, lambda: NOON,
                               neighbours=table)  # fmt: skip
    for batch in batches:
        await processor.process(batch)
    offers: list[dict[str, Any]] = publisher.values("nbo")[-1]["offers"]
    return offers


async def test_a_user_who_chose_an_item_is_offered_its_neighbour_first_and_told_why() -> None:
    without = await top_offers(NeighbourTable(), config(), [event(0, "alien")])
    assert without[0]["offer_id"] == "o-solaris"  # alike by tags
    assert all("cooccurrence" not in o["score_parts"] for o in without)

    offers = await top_offers(neighbours(), config(), [event(0, "alien")])

    assert offers[0]["offer_id"] == "o-aliens"
    assert offers[0]["score_parts"]["cooccurrence"] == pytest.approx(0.5)
    assert offers[0]["reason"] == "Because you chose Alien"
    heat = next(o for o in offers if o["offer_id"] == "o-heat")
    # its neighbour weight is a fifth of the best one's, raised to the part's exponent
    assert heat["score_parts"]["cooccurrence"] == pytest.approx(0.5 * 0.2**COOCCURRENCE_EXPONENT)
    for offer in offers:
        assert sum(offer["score_parts"].values()) == pytest.approx(offer["score"])


async def test_without_a_cooccurrence_weight_neighbours_change_nothing() -> None:
    offers = await top_offers(neighbours(), config(w_cooccurrence=0.0), [event(0, "alien")])
    assert offers[0]["offer_id"] == "o-solaris"
    assert all("cooccurrence" not in o["score_parts"] for o in offers)


async def test_recent_items_come_from_the_store_and_the_batch_and_stay_in_the_cache() -> None:
    store = MemoryProfileStore()
    first = BatchProcessor(store, RecordingPublisher(), catalogue(), config(), lambda: NOON)
    await first.process([event(0, "alien", kind="view")])  # no neighbours known yet
    assert (await store.load(["ripley"]))["ripley"].recent == ("alien",)

    # a worker that never saw the user: its first write conflicts and returns the stored state
    publisher = RecordingPublisher()
    second = BatchProcessor(store, publisher, catalogue(), config(), lambda: NOON,
                            neighbours=neighbours())  # fmt: skip
    await second.process([event(1, "amelie", kind="view")])
    offers = publisher.values("nbo")[-1]["offers"]
    assert offers[0]["offer_id"] == "o-aliens"  # from "alien", read from the store
    assert offers[0]["score_parts"]["cooccurrence"] == pytest.approx(0.5)
    assert (await store.load(["ripley"]))["ripley"].recent == ("amelie", "alien")

    trips = store.round_trips
    await second.process([event(2, "heat", kind="view")])
    assert store.round_trips == trips + 1  # the commit only: the user came from the cache
    offers = publisher.values("nbo")[-1]["offers"]
    assert offers[0]["offer_id"] == "o-aliens"  # "alien" is still among the cached items
    assert offers[0]["score_parts"]["cooccurrence"] == pytest.approx(0.5)


async def test_the_batch_items_come_first_newest_first_and_the_oldest_drop_out() -> None:
    table = neighbours()
    table.upsert("solaris", [("heat", 1.0)])
    cfg = config()
    cfg = PipelineConfig(
        **{**cfg.__dict__, "recent": cfg.recent.model_copy(update={"n_recent": 1})}
    )
    publisher = RecordingPublisher()
    processor = BatchProcessor(MemoryProfileStore(), publisher, catalogue(), cfg, lambda: NOON,
                               neighbours=table)  # fmt: skip
    await processor.process([event(0, "alien", kind="view")])
    assert publisher.values("nbo")[-1]["offers"][0]["offer_id"] == "o-aliens"

    # solaris arrives last but happened before amelie: amelie is the newest, and only it counts
    await processor.process([event(3, "amelie", kind="view"), event(2, "solaris", kind="view")])
    offers = publisher.values("nbo")[-1]["offers"]
    assert [o["score_parts"]["cooccurrence"] for o in offers] == [0.0] * len(offers)


async def test_the_control_group_gets_no_cooccurrence_part() -> None:
    users = [f"user-{n}" for n in range(100)]
    control = next(u for u in users if group_of(u, 0.3) == CONTROL)
    publisher = RecordingPublisher()
    processor = BatchProcessor(MemoryProfileStore(), publisher, catalogue(), config(share=0.3),
                               lambda: NOON, neighbours=neighbours())  # fmt: skip
    await processor.process([event(0, "alien", user=control)])
    [message] = publisher.values("nbo")
    assert message["group"] == "control"
    assert all(o["score_parts"]["cooccurrence"] == 0 for o in message["offers"])
