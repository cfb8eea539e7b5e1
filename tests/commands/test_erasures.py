"""Restoring erasure markers: the latest erasure per person still within the marker lifetime,
from the privacy-audit records."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.commands.erasures import latest_erasures

pytestmark = pytest.mark.unit

DAY_MS = 86_400_000
NOW = 100 * DAY_MS


def audit(user: str, kind: str = "erase", **times: Any) -> bytes:
    return json.dumps({"request_id": "r", "user_id": user, "kind": kind, **times}).encode()


def test_the_latest_erasure_of_each_person_is_kept() -> None:
    values = [
        audit("a", erased_at=NOW - 3 * DAY_MS),
        audit("a", erased_at=NOW - DAY_MS),
        audit("a", erased_at=NOW - 2 * DAY_MS),  # an older request handled late
        audit("b", erased_at=NOW - 5),
    ]
    assert latest_erasures(values, NOW, ttl_s=10 * 86_400) == {"a": NOW - DAY_MS, "b": NOW - 5}


def test_erasures_older_than_the_marker_lifetime_are_skipped() -> None:
    values = [audit("old", erased_at=NOW - 11 * DAY_MS), audit("new", erased_at=NOW - DAY_MS)]
    assert latest_erasures(values, NOW, ttl_s=10 * 86_400) == {"new": NOW - DAY_MS}


def test_records_written_before_erased_at_existed_use_their_completion_time() -> None:
    assert latest_erasures([audit("a", completed_at=NOW - 7)], NOW) == {"a": NOW - 7}


def test_exports_and_records_that_do_not_decode_are_skipped() -> None:
    values = [
        audit("x", kind="export", completed_at=NOW),
        None,
        b"",
        b"{not json",
        b"[1, 2]",
        audit("y", erased_at="yesterday"),
        audit("z", erased_at=True),
        json.dumps({"kind": "erase", "user_id": 7, "erased_at": NOW}).encode(),
    ]
    assert latest_erasures(values, NOW) == {}
