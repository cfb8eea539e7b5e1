"""The contact policy inside the batch pipeline: consent, caps, requests, objection, carts.

Runs the real processor on the in-memory store twin with a controllable clock. NOON is a
winter Monday 12:00 UTC, outside the default quiet hours (21:00-08:00).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from app.core.catalog import Catalogue
from app.pipeline.outbound import CHANNEL_HEADER
from app.pipeline.processor import BatchProcessor
from app.pipeline.records import InboundRecord
from app.policy.consent import ConsentRecord
from app.ports import OutboundRecord, StoredUser
from app.storage.memory_store import MemoryProfileStore
from tests.policy.builders import HOUR, NOON, at
from tests.support.pipeline import deterministic_config
from tests.support.pipeline import genre_catalogue as catalogue
from tests.support.recording import RecordingPublisher

pytestmark = pytest.mark.unit

MINUTE = 60_000
CFG = deterministic_config(
    offers_topic="nbo", dead_letter_topic="dlq", decisions_topic="dec", cart_delay_ms=30 * MINUTE
)


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class Rig:
    def __init__(self, cat: Catalogue | None = None, now: int = NOON) -> None:
        self.store = MemoryProfileStore()
        self.publisher = RecordingPublisher()
        self.clock = Clock(now)
        self.processor = BatchProcessor(
            self.store, self.publisher, cat or catalogue(), CFG, self.clock
        )
        self.offset = 0

    def event(self, kind: str = "like", item: str | None = "i0", user: str = "u1",
              **extra: Any) -> InboundRecord:  # fmt: skip
        self.offset += 1
        body: dict[str, Any] = {
            "event_id": f"e{self.offset}", "user_id": user, "type": kind,
            "ts": self.clock.now, **extra,
        }  # fmt: skip
        if item is not None:
            body["item_id"] = item
        return InboundRecord("events", 0, self.offset, user.encode(), json.dumps(body).encode())

    async def send(self, *records: InboundRecord) -> None:
        await self.processor.process(list(records))

    def consent(self, user: str = "u1", objection: bool = False, **channels: bool) -> None:
        self.store.set_consent(
            ConsentRecord.model_validate(
                {"user_id": user, "channels": channels, "objection": objection,
                 "ts": self.clock.now}
            )
        )  # fmt: skip

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.publisher.values("nbo")

    @property
    def decisions(self) -> list[dict[str, Any]]:
        return self.publisher.values("dec")


async def test_without_consent_only_default_channels_are_used() -> None:
    rig = Rig()
    await rig.send(rig.event())
    assert [m["channel"] for m in rig.messages] == ["in_app"]  # push/email need an opt-in
    header = dict(rig.publisher.records[0].headers)[CHANNEL_HEADER]
    assert header == b"in_app"


async def test_no_message_ever_goes_to_a_channel_without_consent() -> None:
    rig = Rig(catalogue(("push", "email")))
    await rig.send(rig.event())
    assert rig.messages == []
    (decision,) = rig.decisions
    assert decision["sent"] is False and decision["reason"] == "consent"
    assert decision["rejected"] == {"consent": 3} and decision["candidate_count"] == 3


async def test_an_opt_in_makes_the_channel_usable_and_a_revocation_stops_it() -> None:
    rig = Rig(catalogue(("push",)))
    rig.consent(push=True)
    await rig.send(rig.event(item="i0"))
    assert [m["channel"] for m in rig.messages] == ["push"]

    rig.clock.now += 2 * HOUR  # past the hourly push cap
    rig.consent(push=False)
    await rig.send(rig.event(item="i1"), rig.event(item="i1"), rig.event(item="i1"))
    assert len(rig.messages) == 1
    assert rig.decisions[-1]["reason"] == "consent"


async def test_a_burst_for_one_user_sends_no_more_than_the_caps_allow() -> None:
    rig = Rig(catalogue(("push",)))
    rig.consent(push=True)
    items = ["i0", "i1", "i2"]
    for n in range(100):  # every event flips the ranking, one batch each
        await rig.send(rig.event(item=items[n % 3]))
        rig.clock.now += 10 * MINUTE  # 1000 minutes in all: caps of 1/h and 3/day
    assert 1 <= len(rig.messages) <= 3
    capped = [d for d in rig.decisions if d["reason"] == "cap"]
    assert capped and all(d["rejected"]["cap"] >= 1 for d in capped)


async def test_quiet_hours_hold_push_messages() -> None:
    rig = Rig(catalogue(("push",)), now=at("2024-01-15T23:30:00+00:00"))
    rig.consent(push=True)
    await rig.send(rig.event())
    assert rig.messages == [] and rig.decisions[-1]["reason"] == "quiet_hours"


async def test_quiet_hours_follow_the_time_zone_of_the_event() -> None:
    rig = Rig(catalogue(("push",)), now=NOON)  # noon UTC = 21:00 in Tokyo
    rig.consent(push=True)
    await rig.send(rig.event(context={"tz": "Asia/Tokyo"}))
    assert rig.messages == [] and rig.decisions[-1]["tz"] == "Asia/Tokyo"


async def test_a_decision_request_decides_now_for_its_channel() -> None:
    rig = Rig(catalogue(("in_app", "web")))
    await rig.send(rig.event())
    await rig.send(rig.event("decision_request", item=None, channel="web"))
    assert [m["channel"] for m in rig.messages] == ["in_app", "web"]
    request = rig.decisions[-1]
    assert request["trigger"]["type"] == "decision_request" and request["channel"] == "web"


async def test_every_message_of_a_batch_is_published_again_after_a_publish_failure() -> None:
    """Two decision requests in one batch send two messages; the publish fails after the
    commit: the redelivered batch must publish both again, not only the last one stored."""
    cat = catalogue(("in_app", "web"))
    rig = Rig(cat)
    await rig.send(rig.event())
    batch = [
        rig.event("decision_request", item=None, channel="web"),
        rig.event("decision_request", item=None, channel="in_app"),
    ]

    class Failing(RecordingPublisher):
        async def publish(self, records: Sequence[OutboundRecord]) -> None:
            raise ConnectionError("broker gone")

    crashed = BatchProcessor(rig.store, Failing(), cat, CFG, rig.clock)
    with pytest.raises(ConnectionError):
        await crashed.process(batch)  # committed: both decisions stored as sent
    sent = len(rig.messages)

    await rig.processor.process(batch)  # the redelivery

    again = rig.messages[sent:]
    assert sorted(m["channel"] for m in again) == ["in_app", "web"]
    triggers = {m["trigger"]["event_id"] for m in again}
    assert triggers == {json.loads(r.value)["event_id"] for r in batch}
    assert len({m["message_id"] for m in again}) == 2


async def test_a_decision_request_for_a_channel_without_consent_is_refused_and_logged() -> None:
    rig = Rig(catalogue(("in_app", "sms")))
    await rig.send(rig.event("decision_request", item=None, channel="sms"))
    assert rig.messages == []
    assert rig.decisions[-1]["reason"] == "consent"


async def test_an_objection_stops_profiling_and_offers_until_withdrawn() -> None:
    rig = Rig()
    await rig.send(rig.event())
    rig.consent(objection=True)
    assert (await rig.store.load(["u1"]))["u1"].profile is None  # deleted by the consent write

    await rig.send(rig.event(item="i1"), rig.event(item="i2"))
    assert len(rig.messages) == 1
    assert (await rig.store.load(["u1"]))["u1"].profile is None  # nothing applied
    assert rig.decisions[-1]["reason"] == "objection"

    rig.clock.now += 1
    rig.consent(objection=False)
    await rig.send(rig.event(item="i1"))
    assert len(rig.messages) == 2
    stored = (await rig.store.load(["u1"]))["u1"]
    assert stored.profile is not None and stored.profile.n_events == 1


async def test_decisions_are_kept_per_user_newest_first() -> None:
    rig = Rig(catalogue(("push",)))
    await rig.send(rig.event())
    rig.consent(push=True)
    await rig.send(rig.event(item="i1"))
    stored = [json.loads(r) for r in await rig.store.decisions("u1")]
    assert [d["sent"] for d in stored] == [True, False]
    assert stored[0]["offers"][0]["reason"]  # the message's reason is in the record too


async def test_every_sent_offer_carries_a_reason_built_from_its_parts() -> None:
    rig = Rig()
    await rig.send(rig.event(item="i0"))
    (message,) = rig.messages
    assert message["offers"][0]["reason"] == "Matches your interest in sci-fi, space"


async def test_an_abandoned_cart_fires_once_after_the_delay() -> None:
    rig = Rig(catalogue(("in_app",)))
    await rig.send(rig.event("add_to_cart", item="i2"))
    sent = len(rig.messages)
    assert await rig.processor.fire_due_carts([("events", 0)]) == 0  # not due yet

    rig.clock.now += 31 * MINUTE
    assert await rig.processor.fire_due_carts([("events", 0)]) == 1
    assert await rig.processor.fire_due_carts([("events", 0)]) == 0
    cart = rig.messages[sent:]
    assert len(cart) == 1 and cart[0]["trigger"]["type"] == "cart_abandonment"
    assert [o["offer_id"] for o in cart[0]["offers"]] == ["o2"]  # related to the cart item
    assert rig.decisions[-1]["trigger"]["type"] == "cart_abandonment"
    assert rig.store.cart_index("events", 0) == {}


async def test_a_purchase_before_the_delay_cancels_the_cart_timer() -> None:
    rig = Rig(catalogue(("in_app",)))
    await rig.send(rig.event("add_to_cart", item="i2"))
    rig.clock.now += 5 * MINUTE
    await rig.send(rig.event("purchase", item="i2"))
    sent = len(rig.messages)

    rig.clock.now += 60 * MINUTE
    assert await rig.processor.fire_due_carts([("events", 0)]) == 0
    assert len(rig.messages) == sent
    assert rig.store.cart_index("events", 0) == {}


async def test_a_cart_timer_survives_a_new_processor_on_the_same_store() -> None:
    rig = Rig(catalogue(("in_app",)))
    await rig.send(rig.event("add_to_cart", item="i1"))
    restarted = BatchProcessor(rig.store, rig.publisher, catalogue(("in_app",)), CFG, rig.clock)

    rig.clock.now += 31 * MINUTE
    assert await restarted.fire_due_carts([("events", 0)]) == 1
    assert await rig.processor.fire_due_carts([("events", 0)]) == 0  # the old one: nothing
    assert sum(m["trigger"]["type"] == "cart_abandonment" for m in rig.messages) == 1


async def test_a_due_cart_of_a_user_the_worker_holds_fires_without_reading_redis() -> None:
    rig = Rig(catalogue(("in_app",)))
    await rig.send(rig.event("add_to_cart", item="i1"))
    loads: list[list[str]] = []
    load_key_ids = rig.store.load_key_ids

    async def counted(key_ids: Sequence[str]) -> dict[str, StoredUser]:
        loads.append(list(key_ids))
        return await load_key_ids(key_ids)

    rig.store.load_key_ids = counted  # type: ignore[method-assign]
    rig.clock.now += 31 * MINUTE
    assert await rig.processor.fire_due_carts([("events", 0)]) == 1
    assert loads == []  # the state it wrote for the add_to_cart was in its cache
    assert sum(m["trigger"]["type"] == "cart_abandonment" for m in rig.messages) == 1
    restarted = BatchProcessor(rig.store, rig.publisher, catalogue(("in_app",)), CFG, rig.clock)
    rig.clock.now += 60 * MINUTE
    assert await restarted.fire_due_carts([("events", 0)]) == 0
    assert loads == []  # nothing left due: the index entry was dropped


async def test_a_crash_after_the_cart_commit_republishes_the_same_message() -> None:
    rig = Rig(catalogue(("in_app",)))
    await rig.send(rig.event("add_to_cart", item="i1"))
    rig.clock.now += 31 * MINUTE

    class Failing(RecordingPublisher):
        async def publish(self, records: Sequence[OutboundRecord]) -> None:
            raise ConnectionError("broker gone")

    crashed = BatchProcessor(rig.store, Failing(), catalogue(("in_app",)), CFG, rig.clock)
    with pytest.raises(ConnectionError):
        await crashed.fire_due_carts([("events", 0)])  # committed, never published

    assert await rig.processor.fire_due_carts([("events", 0)]) == 0
    (again,) = [m for m in rig.messages if m["trigger"]["type"] == "cart_abandonment"]
    stored = json.loads((await rig.store.load(["u1"]))["u1"].offers_json or b"")
    assert again["message_id"] == stored["message_id"]
    assert rig.store.cart_index("events", 0) == {}


async def crash_after_the_cart_commit(rig: Rig) -> None:
    """A cart timer fires on another processor whose publish fails: committed, not sent."""

    class Failing(RecordingPublisher):
        async def publish(self, records: Sequence[OutboundRecord]) -> None:
            raise ConnectionError("broker gone")

    crashed = BatchProcessor(rig.store, Failing(), catalogue(("in_app",)), CFG, rig.clock)
    with pytest.raises(ConnectionError):
        await crashed.fire_due_carts([("events", 0)])


async def test_a_cart_message_is_not_sent_again_after_a_later_purchase() -> None:
    rig = Rig(catalogue(("in_app",)))
    await rig.send(rig.event("add_to_cart", item="i1"))
    rig.clock.now += 31 * MINUTE
    await crash_after_the_cart_commit(rig)
    rig.clock.now += MINUTE
    await rig.send(rig.event("purchase", item="i1"))  # the person bought it meanwhile

    assert await rig.processor.fire_due_carts([("events", 0)]) == 0

    assert [m for m in rig.messages if m["trigger"]["type"] == "cart_abandonment"] == []
    assert rig.store.cart_index("events", 0) == {}  # and the entry is gone


async def test_a_cart_message_is_sent_again_for_the_entry_that_fired_it_only() -> None:
    """A new timer re-indexed the user at another due time: the entry read is not the one
    of the fired message, so the poll leaves it alone instead of resending the old one."""
    rig = Rig(catalogue(("in_app",)))
    await rig.send(rig.event("add_to_cart", item="i1"))
    rig.clock.now += 31 * MINUTE
    await crash_after_the_cart_commit(rig)
    await rig.send(rig.event("add_to_cart", item="i2"))  # a new timer, indexed at its due time
    new_due = rig.clock.now + 30 * MINUTE
    assert rig.store.cart_index("events", 0) == {"u1": new_due}

    assert await rig.processor.fire_due_carts([("events", 0)]) == 0  # the new one: not due
    assert [m for m in rig.messages if m["trigger"]["type"] == "cart_abandonment"] == []
    rig.clock.now = new_due
    assert await rig.processor.fire_due_carts([("events", 0)]) == 1
    (cart,) = [m for m in rig.messages if m["trigger"]["type"] == "cart_abandonment"]
    assert cart["trigger"]["event_id"] == f"cart:i2:{new_due}"


async def test_a_redelivered_batch_publishes_its_stored_decision_records_again() -> None:
    rig = Rig(catalogue(("push",)))  # no consent: a suppressed decision, no message
    batch = [rig.event(), rig.event(item="i1")]
    await rig.send(*batch)
    first = rig.decisions

    await rig.send(*batch)  # as after a crash between the commit and the publish

    assert rig.messages == []
    assert rig.decisions == first + first  # the same records, nothing decided anew
    assert len(await rig.store.decisions("u1")) == 1


def restarted(rig: Rig, cat: Catalogue) -> None:
    """A new worker on the same store: nothing cached."""
    rig.processor = BatchProcessor(rig.store, rig.publisher, cat, CFG, rig.clock)


async def test_an_objection_and_opt_outs_hold_after_the_users_other_keys_expired() -> None:
    cat = catalogue(("web", "in_app"))
    rig = Rig(cat)
    await rig.send(rig.event())
    rig.consent(objection=True, web=False, in_app=False)
    rig.store.expire("u1")  # every key but the consent expired
    restarted(rig, cat)
    sent = len(rig.messages)

    await rig.send(rig.event(item="i1"))

    assert len(rig.messages) == sent
    assert rig.decisions[-1]["reason"] == "objection" and not rig.decisions[-1]["sent"]
    stored = (await rig.store.load(["u1"]))["u1"]
    assert stored.profile is None  # not rebuilt
    assert stored.consent is not None and stored.consent.objection


async def test_opt_outs_hold_after_the_users_other_keys_expired() -> None:
    cat = catalogue(("web", "in_app"))
    rig = Rig(cat)
    await rig.send(rig.event())
    rig.consent(web=False, in_app=False)
    rig.store.expire("u1")
    restarted(rig, cat)
    sent = len(rig.messages)

    await rig.send(rig.event(item="i1"))

    assert len(rig.messages) == sent
    assert rig.decisions[-1]["reason"] == "consent" and not rig.decisions[-1]["sent"]


async def test_an_objectors_behaviour_is_stored_nowhere() -> None:
    rig = Rig()
    rig.consent(objection=True)
    await rig.send(rig.event("purchase", item="i2"), rig.event("view", item="i1"))
    stored = (await rig.store.load(["u1"]))["u1"]
    assert (stored.profile, stored.purchased, stored.offers_json) == (None, frozenset(), None)
    assert rig.store.seen_items("u1") == {}
    assert rig.decisions[-1]["reason"] == "objection"  # only the record that nothing was sent
