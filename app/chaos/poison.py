"""Poison records for the chaos run: every kind of bad input the run can construct.

Each is keyed ``poison-<kind>-<run>`` (the processing failure: by its user), so the run can tell
from the dead-letter topic that every one of them arrived there and nothing else did. The last
kind passes decoding and fails in processing: its user's ``seen`` key in Redis holds a value
of the wrong type (the run writes it first), so the commit script fails for that user alone.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class PoisonRecord:
    """One bad record: what kind it is, its key and value."""

    kind: str
    key: bytes
    value: bytes


def processing_poison_user(run: str) -> str:
    """The user whose Redis state the run spoils so that processing their event raises."""
    return f"poison-processing-{run}"


def poison_records(run: str) -> list[PoisonRecord]:
    """One record of each kind."""
    now = int(time.time() * 1000)

    def event(user: str, **fields: object) -> dict[str, object]:
        return {"event_id": f"{user}-e", "user_id": user, "type": "view", "item_id": "i0",
                "ts": now, **fields}  # fmt: skip

    def doc(kind: str, body: object) -> PoisonRecord:
        user = f"poison-{kind}-{run}"
        return PoisonRecord(kind, user.encode(), json.dumps(body).encode())

    def raw(kind: str, value: bytes) -> PoisonRecord:
        return PoisonRecord(kind, f"poison-{kind}-{run}".encode(), value)

    dup_user = f"poison-duplicate-keys-{run}"
    processing = processing_poison_user(run)
    return [
        raw("not-json", b"\xff\xfe{not json"),
        raw("not-an-object", b"[1, 2, 3]"),
        raw("empty", b""),
        doc("missing-fields", {"event_id": "x"}),
        doc("unknown-type", event(f"poison-unknown-type-{run}", type="explode")),
        doc("far-future", event(f"poison-far-future-{run}", ts="9999-12-31T23:59:59Z")),
        doc("before-1970", event(f"poison-before-1970-{run}", ts=-5)),
        doc("no-offset-time", event(f"poison-no-offset-time-{run}", ts="2026-01-01T10:00:00")),
        doc("nan-rating", event(f"poison-nan-rating-{run}", type="rating")),
        raw(
            "nan",
            f'{{"event_id":"n","user_id":"poison-nan-{run}","type":"rating",'
            f'"item_id":"i0","rating":NaN,"ts":{now}}}'.encode(),
        ),
        raw(
            "duplicate-keys",
            f'{{"event_id":"d","user_id":"{dup_user}","user_id":"other",'
            f'"type":"view","item_id":"i0","ts":{now}}}'.encode(),
        ),
        doc("huge-id", event(f"poison-huge-id-{run}", item_id="i" * 5_000)),
        raw("oversized", json.dumps(event(f"poison-oversized-{run}", pad="x" * 70_000)).encode()),
        doc(
            "too-many-tags",
            event(
                f"poison-too-many-tags-{run}",
                item_id="unknown",
                tags=[f"t{n}" for n in range(5_000)],
            ),
        ),
        PoisonRecord(
            "processing-fails", processing.encode(), json.dumps(event(processing)).encode()
        ),
    ]
