"""Reading JSON-lines files for ``nbo produce`` and ``nbo catalog load``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path


def event_lines(path: Path) -> Iterator[tuple[bytes | None, bytes]]:
    """(key, raw line) for each non-empty line; key = the line's ``user_id`` when it has one.

    Lines are sent as they are, valid or not: a broken line is the worker's to dead-letter.
    """
    with path.open("rb") as fh:
        for line in fh:
            raw = line.strip()
            if not raw:
                continue
            key: bytes | None = None
            try:
                doc = json.loads(raw)
                if isinstance(doc, dict) and isinstance(doc.get("user_id"), str):
                    key = doc["user_id"].encode()
            except ValueError:
                pass
            yield key, raw


CatalogueRecords = list[tuple[bytes, bytes | None]]


def catalogue_lines(path: Path) -> tuple[CatalogueRecords, CatalogueRecords]:
    """Split a JSON-lines file into (items, offers) keyed by id.

    A line with ``offer_id`` is an offer, else one with ``item_id`` is an item; a line with
    only ``"delete": true`` and an id becomes a deletion (null value). Anything else is an error.
    """
    items: CatalogueRecords = []
    offers: CatalogueRecords = []
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            doc = json.loads(line)
            if not isinstance(doc, dict):
                raise ValueError(f"{path}:{number}: not a JSON object")
            if "offer_id" in doc:
                target, key = offers, str(doc["offer_id"])
            elif "item_id" in doc:
                target, key = items, str(doc["item_id"])
            else:
                raise ValueError(f"{path}:{number}: neither offer_id nor item_id")
            value = None if doc.get("delete") is True else line.strip()
            target.append((key.encode(), value))
    return items, offers
