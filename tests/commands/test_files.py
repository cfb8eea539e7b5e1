"""``nbo produce`` / ``nbo catalog load`` read their files with the worker's own decoders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.commands.files import BadLine, read_catalogue, read_events

pytestmark = pytest.mark.unit

LIKE = {"event_id": "e1", "user_id": "u1", "type": "like", "item_id": "i1", "ts": 1_700_000_000_000}
OFFER = {"offer_id": "o1", "title": "Offer", "item_ids": ["i1"], "value": 5, "channels": ["web"]}


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "lines.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_events_are_keyed_by_user_and_bad_lines_carry_their_number_and_reason(
    tmp_path: Path,
) -> None:
    raw = json.dumps(LIKE)
    path = write(tmp_path, raw, "", "this is not json", json.dumps({**LIKE, "type": "teleport"}))
    found = read_events(path)
    assert found.records == [(b"u1", raw.encode())]
    assert [b.number for b in found.bad] == [3, 4]
    assert found.bad[0].reason.startswith("InvalidJson: ")
    assert found.bad[1].reason.startswith("SchemaViolation: type")
    assert found.bad[0].render(path) == f"{path}:3: {found.bad[0].reason}"


def test_an_event_over_the_size_limit_is_a_bad_line(tmp_path: Path) -> None:
    line = json.dumps({**LIKE, "tags": ["x" * 200]})
    found = read_events(write(tmp_path, line), max_bytes=100)
    assert found.records == []
    assert found.bad == [BadLine(1, f"ValueTooLarge: value is {len(line)} bytes, limit is 100")]


def test_an_offer_with_a_negative_value_is_refused_with_its_line(tmp_path: Path) -> None:
    good = json.dumps(OFFER)
    path = write(tmp_path, good, json.dumps({**OFFER, "offer_id": "o2", "value": -5}))
    found = read_catalogue(path)
    assert found.offers == [(b"o1", good.encode())]
    (bad,) = found.bad
    assert bad.number == 2 and bad.reason.startswith("SchemaViolation: value")


def test_items_offers_and_deletions_are_split_and_keyed_by_id(tmp_path: Path) -> None:
    item = json.dumps({"item_id": "i1", "tags": ["a"]})
    path = write(
        tmp_path, item, json.dumps(OFFER), '{"offer_id": "gone", "delete": true}',
        '{"item_id": "old", "delete": true}',
    )  # fmt: skip
    found = read_catalogue(path)
    assert found.items == [(b"i1", item.encode()), (b"old", None)]
    assert found.offers == [(b"o1", json.dumps(OFFER).encode()), (b"gone", None)]
    assert found.bad == []


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("[1, 2]", "InvalidJson: value is not a JSON object"),
        ('{"title": "no id"}', "neither offer_id nor item_id"),
        ('{"offer_id": 7, "delete": true}', "a deletion needs a non-empty offer_id"),
        ("{oops", "InvalidJson: Expecting property name enclosed in double quotes"),
    ],
)
def test_catalogue_lines_that_the_worker_would_reject_are_bad(
    tmp_path: Path, line: str, reason: str
) -> None:
    found = read_catalogue(write(tmp_path, line))
    assert (found.items, found.offers) == ([], [])
    assert found.bad == [BadLine(1, reason)]
