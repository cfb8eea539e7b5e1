"""A record that makes processing fail for good is dead-lettered; the rest of its batch goes on.

The pipeline runs on the in-memory store twin; a twin that refuses for good to commit the
state of one user ("poison") stands for any record that passes decoding but makes processing
raise. A transient failure is never dead-lettered: the whole batch is retried.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from app.core.dead_letters import HEADER_ERROR_CLASS, HEADER_ERROR_MESSAGE, HEADER_ORIGINAL_OFFSET
from app.pipeline.processor import BatchProcessor
from app.pipeline.records import InboundRecord
from app.pipeline.stats import BatchStats
from app.ports import StoreUnavailable, UserWrite, WriteOutcome
from app.storage.memory_store import MemoryProfileStore
from tests.pipeline.test_processor import NOW, catalogue
from tests.support.pipeline import deterministic_config
from tests.support.recording import RecordingPublisher

pytestmark = pytest.mark.unit

CFG = deterministic_config(offers_topic="nbo", dead_letter_topic="dlq", decisions_topic="dec")


class RefusesOneUser(MemoryProfileStore):
    """Commits like the twin, except that a write for ``poison`` fails for good."""

    def __init__(self, poison: str = "poison") -> None:
        super().__init__()
        self.poison = poison
        self.attempts = 0

    async def commit(self, writes: Sequence[UserWrite]) -> WriteOutcome:
        self.attempts += 1
        if any(w.user_id == self.poison for w in writes):
            raise ValueError(f"cannot store {self.poison}")
        return await super().commit(writes)


def record(offset: int, user: str) -> InboundRecord:
    body = {"event_id": f"e{offset}", "user_id": user, "type": "like", "item_id": "i0",
            "ts": NOW - 1000 + offset}  # fmt: skip
    return InboundRecord("events", 0, offset, user.encode(), json.dumps(body).encode())


def rig(store: MemoryProfileStore) -> tuple[BatchProcessor, RecordingPublisher]:
    publisher = RecordingPublisher()
    return BatchProcessor(store, publisher, catalogue(), CFG, lambda: NOW), publisher


async def test_the_failing_record_is_dead_lettered_with_its_exception_and_the_rest_is_applied() -> (
    None
):
    store = RefusesOneUser()
    processor, publisher = rig(store)
    users = [f"u{n}" for n in range(9)]
    batch = [record(n, u) for n, u in enumerate(users[:5])]
    batch += [record(5, "poison")]
    batch += [record(6 + n, u) for n, u in enumerate(users[5:])]

    stats = await processor.process_isolating(batch)

    (letter,) = publisher.on("dlq")
    headers = dict(letter.headers)
    assert (letter.key, letter.value) == (b"poison", batch[5].value)
    assert headers[HEADER_ERROR_CLASS] == b"ValueError"
    assert headers[HEADER_ERROR_MESSAGE] == b"cannot store poison"
    assert headers[HEADER_ORIGINAL_OFFSET] == b"5"
    stored = await store.load(users)
    assert all(s.profile is not None and s.profile.n_events == 1 for s in stored.values())
    assert (stats.received, stats.applied, stats.dead_lettered) == (10, 9, 1)
    assert stats.reasons == {"ValueError": 1}
    assert store.attempts <= 2 * 4 + 1  # a bisection, not one attempt per record


async def test_every_record_of_a_failing_user_is_dead_lettered_in_order() -> None:
    processor, publisher = rig(RefusesOneUser())
    batch = [record(0, "poison"), record(1, "u1"), record(2, "poison")]
    stats = await processor.process_isolating(batch)
    assert [dict(r.headers)[HEADER_ORIGINAL_OFFSET] for r in publisher.on("dlq")] == [b"0", b"2"]
    assert stats.dead_lettered == 2


async def test_a_transient_failure_is_raised_and_nothing_is_dead_lettered() -> None:
    store = MemoryProfileStore()
    store.available = False
    processor, publisher = rig(store)
    with pytest.raises(StoreUnavailable):
        await processor.process_isolating([record(0, "u1"), record(1, "u2")])
    assert publisher.records == []


async def test_a_batch_without_a_failure_is_processed_once() -> None:
    store = RefusesOneUser()
    processor, publisher = rig(store)
    stats = await processor.process_isolating([record(0, "u1"), record(1, "u2")])
    assert store.attempts == 1 and publisher.on("dlq") == []
    assert (stats.received, stats.applied) == (2, 2)


def test_the_stats_of_the_parts_of_a_batch_add_up() -> None:
    total = BatchStats(received=2, reasons={"A": 1}, phase_s={"load": 0.5})
    total.merge(BatchStats(received=3, reasons={"A": 1, "B": 2}, phase_s={"load": 0.25}))
    assert (total.received, total.reasons, total.phase_s) == (5, {"A": 2, "B": 2}, {"load": 0.75})
