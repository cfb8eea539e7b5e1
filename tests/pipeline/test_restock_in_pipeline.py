"""Repeatable items through the real processor on the in-memory store twin: a purchased
repeatable item comes back when the person is due to restock it, with a restock reason; a
non-repeatable purchase never does; redeliveries and the control group change nothing."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from app.core.catalog import Catalogue
from app.core.catalog_records import Item, Offer
from app.core.holdout import CONTROL, group_of
from app.core.restock import Cycle
from app.pipeline.config import PipelineConfig
from app.pipeline.processor import BatchProcessor
from app.pipeline.records import InboundRecord
from app.storage.memory_store import MemoryProfileStore
from tests.support.pipeline import deterministic_config
from tests.support.recording import RecordingPublisher

pytestmark = pytest.mark.unit

DAY = 86_400_000
T0 = 1_700_000_000_000
CFG = deterministic_config(offers_topic="nbo", dead_letter_topic="dlq", decisions_topic="dec")


def catalogue() -> Catalogue:
    cat = Catalogue(dim=64)
    cat.upsert_item(Item(item_id="milk", title="Milk", tags=("grocery",), repeatable=True,
                         restock_days=7))  # fmt: skip
    cat.upsert_item(Item(item_id="tv", title="TV", tags=("electronics",)))
    cat.upsert_item(Item(item_id="book", title="Book", tags=("books",)))
    for item, title, value in (("milk", "Milk", 1.0), ("tv", "TV", 50.0), ("book", "Book", 5.0)):
        cat.upsert_offer(Offer(offer_id=f"o-{item}", title=title, item_ids=(item,),
                               value=value, channels=("web",)))  # fmt: skip
    return cat


class Rig:
    def __init__(self, cfg: PipelineConfig = CFG) -> None:
        self.store = MemoryProfileStore()
        self.publisher = RecordingPublisher()
        self.processor = BatchProcessor(
            self.store, self.publisher, catalogue(), cfg, lambda: T0 + 60 * DAY
        )
        self.offset = 0

    def record(self, user: str, kind: str, ts: int, **extra: Any) -> InboundRecord:
        self.offset += 1
        body = {"event_id": f"e{self.offset}", "user_id": user, "type": kind, "ts": ts, **extra}
        return InboundRecord("events", 0, self.offset, user.encode(), json.dumps(body).encode())

    async def ask(self, user: str, ts: int) -> dict[str, str]:
        """A decision request at ``ts``: the offers sent, id -> reason."""
        await self.processor.process([self.record(user, "decision_request", ts, channel="web")])
        message = self.publisher.values("nbo")[-1]
        assert message["trigger"]["type"] == "decision_request"
        return {o["offer_id"]: o["reason"] for o in message["offers"]}

    async def buy(self, user: str, item: str, ts: int) -> InboundRecord:
        record = self.record(user, "purchase", ts, item_id=item)
        await self.processor.process([record])
        return record

    async def cycles(self, user: str) -> dict[str, Cycle]:
        profile = (await self.store.load([user]))[user].profile
        assert profile is not None
        return profile.restock


async def test_a_repeatable_item_comes_back_when_due_with_a_restock_reason() -> None:
    rig = Rig()
    await rig.buy("u1", "milk", T0)
    await rig.buy("u1", "tv", T0 + 1)
    early = await rig.ask("u1", T0 + 3 * DAY)  # milk's prior is 7 days: due from 5.6 days
    assert "o-milk" not in early and "o-tv" not in early and early
    due = await rig.ask("u1", T0 + 6 * DAY)
    assert due.get("o-milk") == "Time to restock Milk?"
    assert "o-tv" not in due
    later = await rig.ask("u1", T0 + 40 * DAY)
    assert "o-tv" not in later and later["o-milk"] == "Time to restock Milk?"


async def test_the_persons_own_interval_replaces_the_prior_after_a_second_purchase() -> None:
    rig = Rig()
    await rig.buy("u1", "milk", T0)
    await rig.buy("u1", "milk", T0 + 2 * DAY)
    assert await rig.cycles("u1") == {"milk": Cycle(T0 + 2 * DAY, 2 * DAY, 2)}
    assert "o-milk" not in await rig.ask("u1", T0 + 3 * DAY)  # 0.5 of the interval
    assert "o-milk" in await rig.ask("u1", T0 + 4 * DAY)  # 1.0 of it (the prior says 7 days)


async def test_a_redelivered_purchase_does_not_count_again() -> None:
    rig = Rig()
    await rig.buy("u1", "milk", T0)
    again = await rig.buy("u1", "milk", T0 + 2 * DAY)
    before = await rig.cycles("u1")
    await rig.processor.process([again])  # the same record, redelivered
    duplicate = dataclasses.replace(again, offset=again.offset + 100)  # a producer retry
    await rig.processor.process([duplicate])
    assert await rig.cycles("u1") == before == {"milk": Cycle(T0 + 2 * DAY, 2 * DAY, 2)}


async def test_only_repeatable_items_get_a_cycle() -> None:
    rig = Rig()
    await rig.buy("u1", "tv", T0)
    await rig.buy("u1", "milk", T0 + 1)
    assert set(await rig.cycles("u1")) == {"milk"}


async def test_the_control_group_never_gets_a_purchased_item_back() -> None:
    cfg = dataclasses.replace(CFG, holdout_share=0.5)
    user = next(u for u in (f"user-{n}" for n in range(100))
                if group_of(u, 0.5, cfg.holdout_salt) == CONTROL)  # fmt: skip
    rig = Rig(cfg)
    await rig.buy(user, "milk", T0)
    offered = await rig.ask(user, T0 + 30 * DAY)
    assert offered and "o-milk" not in offered
