"""An erasure sticks: events from before it, redelivered or waiting in consumer lag, never
bring the person's data back, and no worker writes state it read before the erasure."""

from __future__ import annotations

import pytest

from app.pipeline.processor import BatchProcessor
from tests.pipeline.test_policy_in_pipeline import CFG, Rig, catalogue
from tests.policy.builders import NOON

pytestmark = pytest.mark.unit

ERASED_AT = NOON + 1_000


async def test_events_dated_at_or_before_the_erasure_are_dropped_by_a_worker_holding_the_user() -> (
    None
):
    rig = Rig()
    await rig.send(rig.event("purchase", item="i0"), rig.event("like", item="i1"))
    rig.store.erase("u1", ERASED_AT)  # the privacy agent, on this worker or another
    rig.clock.now = ERASED_AT + 5_000
    decided = len(rig.decisions)

    stats = await rig.processor.process(
        [rig.event("purchase", item="i2", ts=NOON), rig.event("like", item="i2", ts=ERASED_AT)]
    )

    assert (stats.before_erasure, stats.applied, stats.dead_lettered) == (2, 0, 0)
    stored = (await rig.store.load(["u1"]))["u1"]
    assert (stored.profile, stored.version, stored.purchased) == (None, 0, frozenset())
    assert rig.store.seen_items("u1") == {} and await rig.store.decisions("u1") == []
    assert len(rig.decisions) == decided  # not even a decision record about them


async def test_a_new_event_after_the_erasure_starts_a_fresh_profile() -> None:
    rig = Rig()
    await rig.send(rig.event("purchase", item="i0"), rig.event("like", item="i1"))
    rig.store.erase("u1", ERASED_AT)
    rig.clock.now = ERASED_AT + 5_000

    await rig.send(rig.event("like", item="i2", ts=NOON), rig.event("view", item="i2"))

    stored = (await rig.store.load(["u1"]))["u1"]
    assert stored.profile is not None and stored.profile.n_events == 1
    assert stored.purchased == frozenset()  # the purchase before the erasure is gone
    assert rig.store.seen_items("u1") == {"i2": ERASED_AT + 5_000}


async def test_a_worker_with_the_user_cached_at_the_same_version_cannot_write_back() -> None:
    """The version alone cannot tell: an erase resets it to 0, and a write after the erasure
    (here another worker's) raises it to the version the stale worker holds."""
    cat = catalogue()
    stale = Rig(cat)
    await stale.send(  # cached: version 1, three events
        stale.event("purchase", item="i0"), stale.event("like", item="i0"), stale.event("view")
    )
    stale.store.erase("u1", ERASED_AT)
    stale.clock.now = ERASED_AT + 5_000
    other = BatchProcessor(stale.store, stale.publisher, cat, CFG, stale.clock)
    await other.process([stale.event("like", item="i1")])
    assert (await stale.store.load(["u1"]))["u1"].version == 1  # the same version again

    await stale.send(stale.event("like", item="i2"))

    stored = (await stale.store.load(["u1"]))["u1"]
    assert stored.profile is not None and stored.profile.n_events == 2
    assert stored.purchased == frozenset()
    assert set(stale.store.seen_items("u1")) == {"i1", "i2"}


async def test_a_later_erasure_is_kept_and_an_earlier_one_does_not_move_it_back() -> None:
    rig = Rig()
    rig.store.erase("u1", ERASED_AT)
    rig.store.erase("u1", NOON)  # a late retry of an older request
    rig.clock.now = ERASED_AT + 5_000

    stats = await rig.processor.process([rig.event("like", ts=NOON + 500)])

    assert stats.before_erasure == 1
    assert (await rig.store.load(["u1"]))["u1"].erased_at_ms == ERASED_AT
