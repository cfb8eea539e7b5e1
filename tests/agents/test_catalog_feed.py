"""The catalogue feed's handling of item-neighbours records (applied directly: no broker)."""

from __future__ import annotations

import pytest

from agents.catalog_feed import CatalogueFeed
from agents.metrics import WorkerMetrics
from app.core.catalog import Catalogue
from app.core.cooccurrence.table import NeighbourTable, neighbours_record

pytestmark = pytest.mark.agents


def feed() -> tuple[CatalogueFeed, NeighbourTable, Catalogue, WorkerMetrics]:
    table, catalogue, metrics = NeighbourTable(), Catalogue(dim=8), WorkerMetrics()
    built = CatalogueFeed(
        {"bootstrap_servers": "127.0.0.1:1"}, "items", "offers", catalogue, metrics,
        neighbours_topic="neighbours", neighbours=table,
    )  # fmt: skip
    return built, table, catalogue, metrics


def rejected(metrics: WorkerMetrics) -> float:
    return metrics.registry.get_sample_value("nbo_catalogue_rejected_total") or 0.0


def test_a_neighbours_record_replaces_the_items_neighbours_and_a_tombstone_deletes_them() -> None:
    built, table, catalogue, _ = feed()
    built._apply("neighbours", b"a", neighbours_record("a", [("b", 1.0), ("c", 2.0)]))
    assert table.neighbours_of("a") == [("c", 2.0), ("b", 1.0)]
    built._apply("neighbours", b"a", neighbours_record("a", [("d", 0.5)]))
    assert table.neighbours_of("a") == [("d", 0.5)]
    built._apply("neighbours", b"a", None)
    assert table.neighbours_of("a") == [] and len(table) == 0
    assert catalogue.n_items == 0  # not an item record


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (b"a", b'{"item_id": "a", "neighbours": [["b", -1.0]]}'),  # negative weight
        (b"a", b"not json"),
        (b"other", b'{"item_id": "a", "neighbours": [["b", 1.0]]}'),  # key is not the item id
    ],
)
def test_a_bad_neighbours_record_is_counted_and_skipped(key: bytes, value: bytes) -> None:
    built, table, _, metrics = feed()
    built._apply("neighbours", b"x", neighbours_record("x", [("y", 1.0)]))
    built._apply("neighbours", key, value)
    assert rejected(metrics) == 1.0
    assert len(table) == 1 and table.neighbours_of("a") == []


def test_without_a_neighbour_table_the_topic_is_not_followed() -> None:
    built = CatalogueFeed(
        {"bootstrap_servers": "127.0.0.1:1"}, "items", "offers", Catalogue(dim=8),
        WorkerMetrics(), neighbours_topic="neighbours",
    )  # fmt: skip
    assert built._neighbours_topic is None
