"""Reading JSON-lines files for ``nbo produce`` and ``nbo catalog load``.

Every line is validated with the decoder the worker uses for that topic (so a line the worker
would dead-letter is caught here, with its line number and the same reason) before anything is
sent. Blank lines are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from app.core.catalog_records import decode_item, decode_offer
from app.core.decoding import DEFAULT_MAX_BYTES
from app.core.errors import EventRejected
from app.core.events import decode_event

Record = tuple[bytes | None, bytes | None]
"""A Kafka (key, value) pair; a ``None`` value is a catalogue tombstone."""


@dataclass(frozen=True)
class BadLine:
    """A line that would not pass the worker's decoder: 1-based ``number`` and why."""

    number: int
    reason: str

    def render(self, path: Path) -> str:
        """``<path>:<number>: <reason>``, the form compilers use."""
        return f"{path}:{self.number}: {self.reason}"


@dataclass
class EventFile:
    """The valid events of a file (keyed by ``user_id``, sent as written) and its bad lines."""

    records: list[Record] = field(default_factory=list)
    bad: list[BadLine] = field(default_factory=list)


@dataclass
class CatalogueFile:
    """The valid items and offers of a file, keyed by id, and its bad lines."""

    items: list[Record] = field(default_factory=list)
    offers: list[Record] = field(default_factory=list)
    bad: list[BadLine] = field(default_factory=list)


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            raw = line.strip()
            if raw:
                yield number, raw


def _rejection(exc: EventRejected) -> str:
    return f"{exc.reason_class}: {exc.message}"


def read_events(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> EventFile:
    """Each non-empty line of ``path`` decoded as a ``UserEvent`` (the worker's decoder)."""
    out = EventFile()
    for number, raw in _lines(path):
        try:
            event = decode_event(raw, max_bytes)
        except EventRejected as exc:
            out.bad.append(BadLine(number, _rejection(exc)))
            continue
        out.records.append((event.user_id.encode(), raw))
    return out


def _tombstone_id(doc: dict[str, object], id_field: str) -> str | None:
    value = doc.get(id_field)
    return value if isinstance(value, str) and value else None


def read_catalogue(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> CatalogueFile:
    """Split a JSON-lines file into items and offers keyed by id, each line decoded as the
    worker's catalogue reader decodes it.

    A line with ``offer_id`` is an offer, else one with ``item_id`` is an item; a line with
    ``"delete": true`` and a string id becomes a deletion (null value). Anything else is bad.
    """
    out = CatalogueFile()
    kinds: tuple[tuple[str, list[Record], Callable[[bytes, int], BaseModel]], ...] = (
        ("offer_id", out.offers, decode_offer),
        ("item_id", out.items, decode_item),
    )
    for number, raw in _lines(path):
        try:
            doc = json.loads(raw)
        except json.JSONDecodeError as exc:
            out.bad.append(BadLine(number, f"InvalidJson: {exc.msg}"))
            continue
        except UnicodeDecodeError:
            out.bad.append(BadLine(number, "InvalidJson: not UTF-8"))
            continue
        if not isinstance(doc, dict):
            out.bad.append(BadLine(number, "InvalidJson: value is not a JSON object"))
            continue
        for id_field, target, decode in kinds:
            if id_field not in doc:
                continue
            if doc.get("delete") is True:
                key = _tombstone_id(doc, id_field)
                if key is None:
                    out.bad.append(BadLine(number, f"a deletion needs a non-empty {id_field}"))
                else:
                    target.append((key.encode(), None))
                break
            try:
                decode(raw, max_bytes)
            except EventRejected as exc:
                out.bad.append(BadLine(number, _rejection(exc)))
            else:
                target.append((str(doc[id_field]).encode(), raw))
            break
        else:
            out.bad.append(BadLine(number, "neither offer_id nor item_id"))
    return out
