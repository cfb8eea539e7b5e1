"""The replay's clock of retraining: when each method relearns, and from which rows."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.catalog_records import Item
from app.core.enums import EventType
from app.evaluation.evaluate import build_catalogue, item_offer
from app.evaluation.metrics import RankingMetrics
from app.evaluation.replay import ItemOffers, Method, Query, replay
from app.learning.interactions import InteractionLog
from tests.support.planted import T0

pytestmark = pytest.mark.unit

MIN = 60_000


class Recorder(Method):
    """Writes down every ask (the query's time) and every retrain (its end row)."""

    def __init__(self) -> None:
        super().__init__("recorder", RankingMetrics(5, 10))
        self.calls: list[tuple[str, int]] = []

    def ask(self, query: Query) -> None:
        self.calls.append(("ask", query.ts_ms))

    def retrain(self, log: InteractionLog, end: int) -> None:
        self.calls.append(("retrain", end))


def test_each_method_relearns_from_every_row_before_the_first_event_of_a_new_period() -> None:
    # minutes: 0..7 train; the split is at minute 8; test events at 8, 9, 12, 13, 30
    minutes = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 30]
    items = [Item(item_id=f"i{k:02d}", title=f"Item {k}") for k in range(len(minutes))]
    log = InteractionLog.from_columns(
        ["u"] * len(minutes),
        [i.item_id for i in items],
        [T0 + m * MIN for m in minutes],
        [EventType.LIKE] * len(minutes),
        item_ids=[i.item_id for i in items],
    )
    snap = build_catalogue(items, [item_offer(i) for i in items], 4).snapshot()
    recorder = Recorder()
    split = T0 + 8 * MIN
    stats = replay(log, split, np.ones(len(log), dtype=np.bool_), ItemOffers(log.item_ids, snap),
                   [recorder], retrain_every_ms=3 * MIN)  # fmt: skip
    # moments: 11 (first event at/after it: minute 12, row 10), 14 and 17 ... 29 have no event
    # of their own: one retrain before minute 30 (row 12), not six
    assert recorder.calls == [
        ("ask", T0 + 8 * MIN),
        ("ask", T0 + 9 * MIN),
        ("retrain", 10),
        ("ask", T0 + 12 * MIN),
        ("ask", T0 + 13 * MIN),
        ("retrain", 12),
        ("ask", T0 + 30 * MIN),
    ]
    assert stats.retrains == 2
    frozen = Recorder()
    replay(log, split, np.ones(len(log), dtype=np.bool_), ItemOffers(log.item_ids, snap), [frozen])
    assert not [c for c in frozen.calls if c[0] == "retrain"]
