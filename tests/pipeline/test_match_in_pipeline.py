"""The calibrated match in the batch pipeline: messages carry it, weak offers are held back.

Runs the real processor on the in-memory store twin (NOON: outside quiet hours)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import pytest

from app.core.calibration import Calibration
from app.core.catalog_records import Offer
from app.core.holdout import CONTROL, PERSONALISED
from app.core.ranked import RankedOffers
from app.pipeline.config import PipelineConfig
from app.pipeline.decisions import DecisionMaker
from app.pipeline.processor import BatchProcessor
from app.pipeline.records import InboundRecord
from app.policy.consent import ConsentRecord
from app.storage.memory_store import MemoryProfileStore
from tests.policy.builders import NOON
from tests.support.calibration import calibration_for
from tests.support.pipeline import deterministic_config
from tests.support.pipeline import genre_catalogue as catalogue
from tests.support.recording import RecordingPublisher

pytestmark = pytest.mark.unit

BASE = deterministic_config(offers_topic="nbo", dead_letter_topic="dlq", decisions_topic="dec")
RISING = calibration_for(BASE, [(0.0, 0.0), (2.0, 0.5)])
"""Match = 25 x score: the offers below (score about 0.3 to 0.9) get 7 to 23 %."""
FLAT_5 = calibration_for(BASE, [(0.0, 0.05), (2.0, 0.05)])
"""Every offer 5 %: too weak for push (10 %), enough for in_app and web (2 %)."""


class Rig:
    def __init__(self, config: PipelineConfig, channels: tuple[str, ...] = ("push",)) -> None:
        self.store = MemoryProfileStore()
        self.publisher = RecordingPublisher()
        self.processor = BatchProcessor(
            self.store, self.publisher, catalogue(channels), config, lambda: NOON
        )
        self.store.set_consent(
            ConsentRecord.model_validate({"user_id": "u1", "channels": {"push": True}, "ts": 0})
        )

    async def like(self, item: str = "i0") -> None:
        body = {"event_id": "e1", "user_id": "u1", "type": "like", "item_id": item, "ts": NOON}
        await self.processor.process(
            [InboundRecord("events", 0, 1, b"u1", json.dumps(body).encode())]
        )

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.publisher.values("nbo")

    @property
    def decisions(self) -> list[dict[str, Any]]:
        return self.publisher.values("dec")


def with_cal(calibration: Calibration | None) -> PipelineConfig:
    return dataclasses.replace(BASE, calibration=calibration)


async def test_each_offer_of_a_message_carries_its_match_from_the_calibration() -> None:
    rig = Rig(with_cal(RISING), ("in_app",))
    await rig.like()
    (message,) = rig.messages
    for offer in message["offers"]:
        assert 0 <= offer["match"] <= 100
        assert offer["match"] == RISING.match([offer["score"]])[0]  # no exploration here
    (record,) = rig.decisions
    assert [o["match"] for o in record["offers"]] == [o["match"] for o in message["offers"]]


async def test_a_weak_offer_is_held_back_on_push_and_the_record_says_below_match() -> None:
    rig = Rig(with_cal(FLAT_5), ("push",))
    await rig.like()
    assert rig.messages == []
    (record,) = rig.decisions
    assert not record["sent"] and record["reason"] == "below_match"
    assert record["rejected"] == {"below_match": 3}
    assert [(h["offer_id"], h["match"]) for h in record["held_back"]] == [
        ("o0", 5.0), ("o1", 5.0), ("o2", 5.0),
    ]  # fmt: skip


async def test_offers_too_weak_for_push_go_out_on_in_app() -> None:
    strong = Rig(with_cal(calibration_for(BASE, [(0.0, 0.5), (2.0, 0.5)])), ("push", "in_app"))
    await strong.like()
    assert [m["channel"] for m in strong.messages] == ["push"]  # the user opted in to push
    weak = Rig(with_cal(FLAT_5), ("push", "in_app"))
    await weak.like()
    assert [m["channel"] for m in weak.messages] == ["in_app"]
    assert all(o["match"] == 5.0 for o in weak.messages[0]["offers"])


async def test_without_a_calibration_messages_have_no_match_and_nothing_is_held_back() -> None:
    rig = Rig(with_cal(None), ("push",))
    await rig.like()
    (message,) = rig.messages
    assert message["channel"] == "push"
    assert all("match" not in o for o in message["offers"])
    (record,) = rig.decisions
    assert record["sent"] and "held_back" not in record and "below_match" not in record["rejected"]


def lazy(scores: list[float], names: tuple[str, ...] = ("affinity",)) -> RankedOffers:
    offers = [Offer(offer_id=f"o{i}", title="t", channels=("web",)) for i in range(len(scores))]
    return RankedOffers(
        offers, scores, names, [list(scores)] + [[0.0] * len(scores)] * (len(names) - 1)
    )


def test_only_personalised_rankings_of_the_calibrated_kind_get_a_match() -> None:
    maker = DecisionMaker(catalogue(("web",)), with_cal(RISING))
    assert maker.matches(lazy([0.4, 0.2]), PERSONALISED) == [10.0, 5.0]
    assert maker.matches(lazy([0.4]), CONTROL) is None  # ranked without the person
    assert maker.matches(lazy([0.4]), PERSONALISED, cart=True) is None  # ranked for a cart
    with_cooc = lazy([0.4], ("affinity", "cooccurrence"))
    assert maker.matches(with_cooc, PERSONALISED) is None  # fitted without co-occurrence
    assert (
        DecisionMaker(catalogue(("web",)), with_cal(None)).matches(lazy([0.4]), PERSONALISED)
        is None
    )
    assert np.isclose(RISING.probability([0.4])[0], 0.1)
