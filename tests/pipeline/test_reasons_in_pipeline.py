"""Every offer the pipeline sends carries a true, non-empty reason, on every path that sends.

Paths: a personalised user, the control group (no user vector), a new user with no history, a
decision request, and a fired cart timer (whose offer about the cart item speaks of the cart).
Runs the real processor on the in-memory store twin.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from pydantic import ValidationError

from app.core.catalog import Catalogue
from app.core.catalog_records import Item, Offer
from app.core.holdout import CONTROL, group_of
from app.core.messages import RankedOffer
from app.core.reasons import REASON_CART
from app.pipeline.config import PipelineConfig
from app.pipeline.processor import BatchProcessor
from app.pipeline.records import InboundRecord
from app.storage.memory_store import MemoryProfileStore
from tests.policy.builders import NOON
from tests.support.pipeline import deterministic_config
from tests.support.recording import RecordingPublisher

pytestmark = pytest.mark.unit

MINUTE = 60_000
CFG = deterministic_config(
    offers_topic="nbo", dead_letter_topic="dlq", decisions_topic="dec", cart_delay_ms=30 * MINUTE
)


def catalogue() -> Catalogue:
    cat = Catalogue(dim=64)
    for i, tags in enumerate([("sci-fi", "space"), ("romance", "drama"), ("action", "cars")]):
        cat.upsert_item(Item(item_id=f"i{i}", tags=tags, title=f"Item {i}"))
        cat.upsert_offer(
            Offer(offer_id=f"o{i}", title=f"Offer {i}", item_ids=(f"i{i}",), tags=tags,
                  value=float(i), channels=("in_app", "web"))
        )  # fmt: skip
    # an offer with nothing to say for itself: no value, tags, popularity or priority
    cat.upsert_offer(Offer(offer_id="bare", title="Bare offer", channels=("in_app",)))
    return cat


def event(offset: int, user: str, kind: str = "like", **extra: Any) -> InboundRecord:
    body = {"event_id": f"e{offset}", "user_id": user, "type": kind, "ts": NOON, **extra}
    return InboundRecord("events", 0, offset, user.encode(), json.dumps(body).encode())


def rig(cfg: PipelineConfig = CFG) -> tuple[BatchProcessor, RecordingPublisher, list[int]]:
    publisher = RecordingPublisher()
    clock = [NOON]
    processor = BatchProcessor(MemoryProfileStore(), publisher, catalogue(), cfg, lambda: clock[0])
    return processor, publisher, clock


def reasons(messages: list[dict[str, Any]]) -> list[str]:
    return [o["reason"] for m in messages for o in m["offers"]]


def assert_all_reasoned(messages: list[dict[str, Any]]) -> None:
    assert messages, "nothing was sent: the check would prove nothing"
    for m in messages:
        for offer in m["offers"]:
            assert offer["reason"].strip(), (m["user_id"], m["group"], offer)


async def test_every_offer_of_a_personalised_user_has_a_reason() -> None:
    processor, publisher, _ = rig()
    await processor.process([event(1, "u1", item_id="i0")])
    assert_all_reasoned(publisher.values("nbo"))
    assert reasons(publisher.values("nbo"))[0] == "Matches your interest in sci-fi, space"


async def test_every_offer_of_the_control_group_has_a_reason_that_names_no_interest() -> None:
    cfg = dataclasses.replace(CFG, holdout_share=0.5)
    users = [f"user-{n}" for n in range(40)]
    control = [u for u in users if group_of(u, 0.5, cfg.holdout_salt) == CONTROL]
    assert control, "no control user among the 40: pick other ids"
    processor, publisher, _ = rig(cfg)
    await processor.process([event(n, u, item_id="i0") for n, u in enumerate(control)])
    sent = [m for m in publisher.values("nbo") if m["group"] == CONTROL]
    assert len({m["user_id"] for m in sent}) == len(control)
    assert_all_reasoned(sent)
    # not personalised, so never a claim about the person's interests
    assert not [r for r in reasons(sent) if "interest" in r or "Similar" in r]


async def test_a_new_user_with_no_usable_history_gets_reasons() -> None:
    processor, publisher, _ = rig()
    # an item the catalogue does not know: no vector, so a cold start
    await processor.process([event(1, "newcomer", item_id="unknown-item")])
    assert_all_reasoned(publisher.values("nbo"))


async def test_every_offer_of_a_decision_request_has_a_reason() -> None:
    processor, publisher, _ = rig()
    await processor.process([event(1, "u1", "decision_request", channel="web")])
    (message,) = publisher.values("nbo")
    assert message["channel"] == "web" and message["trigger"]["type"] == "decision_request"
    assert_all_reasoned([message])


async def test_a_cart_offer_about_the_cart_item_speaks_of_the_cart() -> None:
    processor, publisher, clock = rig()
    await processor.process([event(1, "u1", "add_to_cart", item_id="i2")])
    before = len(publisher.values("nbo"))
    clock[0] += 31 * MINUTE
    assert await processor.fire_due_carts([("events", 0)]) == 1
    (cart,) = publisher.values("nbo")[before:]
    assert cart["trigger"]["type"] == "cart_abandonment"
    assert [(o["offer_id"], o["reason"]) for o in cart["offers"]] == [
        ("o2", REASON_CART.format(title="Item 2"))
    ]


@pytest.mark.parametrize("reason", ["", "   ", "\n"])
def test_the_message_schema_refuses_an_empty_reason(reason: str) -> None:
    with pytest.raises(ValidationError, match="reason"):
        RankedOffer(offer_id="o1", rank=1, score=1.0, score_parts={}, reason=reason)
