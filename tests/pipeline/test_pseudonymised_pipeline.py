"""With ids pseudonymised, no stored value holds the user id in clear and no id derived from it
can be recomputed by guessing; the messages to channel services still address the person."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.core.messages import message_id
from app.core.pseudonym import pseudonymise, unseal
from app.pipeline.processor import BatchProcessor
from app.pipeline.records import InboundRecord
from app.storage.memory_store import MemoryProfileStore
from tests.pipeline.test_policy_in_pipeline import MINUTE, Clock, catalogue
from tests.policy.builders import NOON
from tests.support.pipeline import deterministic_config
from tests.support.recording import RecordingPublisher

pytestmark = pytest.mark.unit

SECRET = b"s3cret"
USER = "alice@example.com"
CFG = deterministic_config(
    offers_topic="nbo", dead_letter_topic="dlq", decisions_topic="dec",
    cart_delay_ms=30 * MINUTE, pseudonym_secret=SECRET,
)  # fmt: skip


def record(offset: int, kind: str, item: str) -> InboundRecord:
    body: dict[str, Any] = {"event_id": f"e{offset}", "user_id": USER, "type": kind,
                            "item_id": item, "ts": NOON}  # fmt: skip
    return InboundRecord("events", 0, offset, USER.encode(), json.dumps(body).encode())


async def run() -> tuple[MemoryProfileStore, RecordingPublisher, BatchProcessor]:
    store, publisher = MemoryProfileStore(), RecordingPublisher()
    processor = BatchProcessor(store, publisher, catalogue(), CFG, Clock(NOON))
    await processor.process([record(1, "like", "i0"), record(2, "add_to_cart", "i1")])
    return store, publisher, processor


async def test_no_stored_value_holds_the_user_id_in_clear() -> None:
    store, _, _ = await run()

    stored = (await store.load([USER]))[USER]
    assert stored.offers_json is not None and USER.encode() not in stored.offers_json
    assert json.loads(stored.offers_json)["user_id"] == pseudonymise(USER, SECRET)
    policy = stored.policy.to_json()
    assert USER.encode() not in policy and b"alice" not in policy
    assert stored.policy.uid is not None and unseal(stored.policy.uid, SECRET) == USER
    for raw in await store.decisions(USER):
        assert b"alice" not in raw


async def test_the_published_message_addresses_the_person_with_ids_that_need_the_secret() -> None:
    _, publisher, _ = await run()

    (message,) = publisher.values("nbo")
    assert message["user_id"] == USER
    assert message["message_id"] != message_id(USER, "e2")  # unkeyed, from a guessed id
    assert message["message_id"] == message_id(pseudonymise(USER, SECRET), "e2")
    (decision,) = publisher.values("dec")
    assert decision["user_id"] == pseudonymise(USER, SECRET)
    assert decision["decision_id"] != message_id(USER, "decision\x1fe2")


async def test_a_redelivered_batch_republishes_the_message_as_first_published() -> None:
    store, publisher, _ = await run()
    first = publisher.on("nbo")[0].value
    again = BatchProcessor(store, publisher, catalogue(), CFG, Clock(NOON))  # after a crash

    await again.process([record(1, "like", "i0"), record(2, "add_to_cart", "i1")])

    assert [r.value for r in publisher.on("nbo")] == [first, first]
