"""The worker's live neighbour table and the item-neighbours record."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.core.catalog import Catalogue
from app.core.catalog_records import Item, Offer
from app.core.cooccurrence.index import CooccurrenceIndex, RecentItemsConfig
from app.core.cooccurrence.table import NeighbourTable, decode_neighbours, neighbours_record
from app.core.errors import EventRejected, RejectReason

pytestmark = pytest.mark.unit

CFG = RecentItemsConfig()


def catalogue() -> Catalogue:
    cat = Catalogue(dim=8)
    for item in ("a", "b", "c"):
        cat.upsert_item(Item(item_id=item, title=f"Title {item}"))
        cat.upsert_offer(Offer(offer_id=f"o-{item}", title=item, item_ids=(item,)))
    return cat


def test_the_index_holds_each_items_best_neighbours_like_one_built_offline() -> None:
    table = NeighbourTable(max_neighbours=2)
    table.upsert("a", [("c", 1.0), ("b", 3.0), ("d", 1.0)])
    table.upsert("b", [("a", 2.0)])
    offline = CooccurrenceIndex.from_neighbours(
        {"a": [("c", 1.0), ("b", 3.0), ("d", 1.0)], "b": [("a", 2.0)]}, max_neighbours=2
    )
    index = table.index()
    for item in ("a", "b", "c", "d", "unknown"):
        assert index.neighbours_of(item) == offline.neighbours_of(item)
    assert table.neighbours_of("a") == [("b", 3.0), ("c", 1.0)]  # ties by id
    assert len(table) == 2


def test_a_burst_of_updates_costs_one_rebuild_at_the_next_read() -> None:
    table = NeighbourTable()
    for i in range(50):
        table.upsert(f"i{i}", [(f"i{i + 1}", 1.0)])
    assert table.rebuilds == 0
    first = table.index()
    assert table.index() is first and table.rebuilds == 1
    table.upsert("i0", [("i2", 5.0)])
    assert table.index() is not first and table.rebuilds == 2
    assert table.index().neighbours_of("i0") == [("i2", 5.0)]


def test_an_update_replaces_and_a_delete_or_empty_list_removes_the_neighbours() -> None:
    table = NeighbourTable()
    table.upsert("a", [("b", 1.0), ("b", 4.0)])  # a repeated neighbour keeps its best weight
    assert table.neighbours_of("a") == [("b", 4.0)]
    table.upsert("a", [("c", 2.0)])
    assert table.index().neighbours_of("a") == [("c", 2.0)]
    assert table.delete("a") and not table.delete("a")
    assert table.index().neighbours_of("a") == [] and len(table) == 0
    table.upsert("b", [("c", 1.0)])
    table.upsert("b", [])
    assert table.index().neighbours_of("b") == [] and len(table) == 0


@pytest.mark.parametrize("weight", [-1.0, float("nan"), float("inf")])
def test_invalid_weights_are_refused(weight: float) -> None:
    with pytest.raises(ValueError):
        NeighbourTable().upsert("a", [("b", weight)])


def test_ids_of_deleted_items_are_dropped_from_the_index_when_they_dominate() -> None:
    table = NeighbourTable(max_neighbours=3)
    for i in range(100):
        table.upsert(f"old{i}", [(f"gone{i}", 1.0)])
    table.upsert("a", [("b", 1.0)])
    assert len(table.index().item_ids) == 202
    for i in range(100):
        table.delete(f"old{i}")
    index = table.index()
    assert sorted(index.item_ids) == ["a", "b"]
    assert index.neighbours_of("a") == [("b", 1.0)]
    table.upsert("c", [("a", 2.0)])
    assert table.index().neighbours_of("c") == [("a", 2.0)]


def test_a_user_who_chose_an_item_scores_the_offers_of_its_neighbours() -> None:
    cat = catalogue()
    table = NeighbourTable()
    table.upsert("a", [("b", 2.0), ("c", 1.0)])
    snap = cat.snapshot()
    [(rows, values), nothing] = table.scores([["a"], ["c"]], snap, CFG)
    got = {snap.offer_ids[r]: v for r, v in zip(rows.tolist(), values.tolist(), strict=True)}
    assert got == {"o-b": 1.0, "o-c": 0.5**CFG.exponent}
    assert len(nothing[0]) == 0
    because = table.because(["c", "a"], CFG, cat)
    assert because(snap.offers[snap.offer_index["o-b"]]) == "Title a"
    assert because(snap.offers[snap.offer_index["o-a"]]) is None


def test_the_offer_alignment_follows_catalogue_and_table_changes() -> None:
    cat = catalogue()
    table = NeighbourTable()
    table.upsert("a", [("b", 1.0)])
    first = table.alignment(cat.snapshot())
    assert table.alignment(cat.snapshot()) is first
    cat.set_popularity("o-a", 0.5)  # a new snapshot, the same offers
    assert table.alignment(cat.snapshot()) is first
    cat.upsert_offer(Offer(offer_id="o-b2", title="b again", item_ids=("b",)))
    snap = cat.snapshot()
    [(rows, _)] = table.scores([["a"]], snap, CFG)
    assert sorted(snap.offer_ids[r] for r in rows.tolist()) == ["o-b", "o-b2"]
    table.upsert("a", [("c", 1.0)])
    [(rows, _)] = table.scores([["a"]], snap, CFG)
    assert [snap.offer_ids[r] for r in rows.tolist()] == ["o-c"]


def test_a_neighbours_record_round_trips() -> None:
    raw = neighbours_record("a", [("b", 0.5), ("c", 1)])
    doc = json.loads(raw)
    assert doc == {"schema_version": 1, "item_id": "a", "neighbours": [["b", 0.5], ["c", 1.0]]}
    record = decode_neighbours(raw)
    assert record.item_id == "a" and record.neighbours == (("b", 0.5), ("c", 1.0))
    assert decode_neighbours(b'{"item_id": "x", "extra": 1}').neighbours == ()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"item_id": "a", "neighbours": [["b", -1]]}', RejectReason.SCHEMA_VIOLATION),
        (b'{"item_id": "a", "neighbours": [["b", "1"]]}', RejectReason.SCHEMA_VIOLATION),
        (b'{"item_id": "a", "neighbours": [["b"]]}', RejectReason.SCHEMA_VIOLATION),
        (b'{"neighbours": []}', RejectReason.SCHEMA_VIOLATION),
        (b'{"schema_version": 2, "item_id": "a"}', RejectReason.UNSUPPORTED_SCHEMA_VERSION),
        (b"{not json", RejectReason.INVALID_JSON),
    ],
)
def test_bad_neighbours_records_are_rejected(raw: bytes, reason: RejectReason) -> None:
    with pytest.raises(EventRejected) as caught:
        decode_neighbours(raw)
    assert caught.value.reason_class == reason


def test_weights_are_kept_as_float32_in_the_index() -> None:
    table = NeighbourTable()
    table.upsert("a", [("b", 0.1)])
    assert table.index().weights.dtype == np.float32
