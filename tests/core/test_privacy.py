"""Privacy requests and their audit records: decoding rules and the wire shape of the builders."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.core.errors import EventRejected, RejectReason
from app.core.privacy import (
    PrivacyKind,
    PrivacyRequest,
    check_key,
    decode_privacy_request,
    erase_audit,
    export_audit,
    export_data,
    key_user_id,
)
from app.core.profile import Profile
from app.core.restock import Cycle

pytestmark = pytest.mark.unit


def raw(**fields: object) -> bytes:
    body: dict[str, object] = {
        "schema_version": 1,
        "request_id": "r-1",
        "user_id": "u1",
        "kind": "erase",
        "ts": "2024-05-01T12:00:00Z",
    }
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


def request(kind: str = "erase") -> PrivacyRequest:
    return decode_privacy_request(raw(kind=kind, ts=1_000))


def test_a_request_decodes_with_its_timestamp_in_epoch_ms_and_unknown_fields_ignored() -> None:
    decoded = decode_privacy_request(raw(kind="export", note="from the help desk"))
    assert decoded.request_id == "r-1" and decoded.user_id == "u1"
    assert decoded.kind is PrivacyKind.EXPORT
    assert decoded.ts_ms == 1_714_564_800_000


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (raw(kind="forget"), RejectReason.SCHEMA_VIOLATION),
        (raw(user_id="../x y"), RejectReason.SCHEMA_VIOLATION),
        (raw(request_id=None), RejectReason.SCHEMA_VIOLATION),
        (raw(ts="2024-05-01T12:00:00"), RejectReason.SCHEMA_VIOLATION),
        (raw(schema_version=2), RejectReason.UNSUPPORTED_SCHEMA_VERSION),
        (b"{nope", RejectReason.INVALID_JSON),
        (None, RejectReason.EMPTY_VALUE),
    ],
)
def test_invalid_requests_are_rejected_with_their_reason(
    body: bytes | None, reason: RejectReason
) -> None:
    with pytest.raises(EventRejected) as caught:
        decode_privacy_request(body)
    assert caught.value.reason_class == reason


def test_a_key_must_name_the_records_user_when_it_is_set() -> None:
    check_key(b"u1", "u1")
    check_key(None, "u1")
    with pytest.raises(EventRejected) as caught:
        check_key(b"u2", "u1")
    assert caught.value.reason_class == RejectReason.SCHEMA_VIOLATION


@pytest.mark.parametrize("key", [None, b"", b"../x y", b"\xff\xfe"])
def test_a_key_that_is_not_a_valid_user_id_is_rejected(key: bytes | None) -> None:
    with pytest.raises(EventRejected):
        key_user_id(key)


def test_a_valid_key_is_the_user_id() -> None:
    assert key_user_id(b"alice@example.com") == "alice@example.com"


def test_the_erase_audit_record_reports_counts_and_the_three_times() -> None:
    audit = json.loads(
        erase_audit(request(), 5, 2, completed_at_ms=2_000, erased_at_ms=1_500).to_json_bytes()
    )
    assert audit == {
        "schema_version": 1,
        "request_id": "r-1",
        "user_id": "u1",
        "kind": "erase",
        "status": "completed",
        "deleted_keys": 5,
        "timers_removed": 2,
        "erased_at": 1_500,
        "requested_at": 1_000,
        "completed_at": 2_000,
    }


def test_negative_counts_cannot_be_reported() -> None:
    with pytest.raises(ValueError):
        erase_audit(request(), -1, 0, completed_at_ms=2_000, erased_at_ms=2_000)


def test_the_export_audit_record_carries_the_profile_and_every_stored_part() -> None:
    profile = Profile(
        vec=np.array([0.5, -0.25, 0.0, 1.0], dtype=np.float32),
        t_ref_ms=10,
        n_events=3,
        updated_at_ms=1_500,
        offsets={0: 4},
        recent_event_ids=(("e1", 10),),
        restock={"milk": Cycle(9, 86_400_000, 2)},
    )
    data = export_data(
        profile=profile,
        strongest_tags=[("sci-fi", 0.712345678), ("space", 0.5)],
        consent={"user_id": "u1", "channels": {"web": True}, "ts": 5},
        contact_history={"v": 1, "contacts": {"web": [900]}},
        decisions=[{"decision_id": "d2"}, {"decision_id": "d1"}],
        current_offers={"message_id": "m1", "offers": []},
        seen_items={"i1": 7},
        purchased_items={"i2": 8},
    )
    audit = json.loads(export_audit(request("export"), data, completed_at_ms=3_000).to_json_bytes())

    assert audit["kind"] == "export" and audit["status"] == "completed"
    assert audit["requested_at"] == 1_000 and audit["completed_at"] == 3_000
    exported = audit["data"]
    assert exported["profile"] == {
        "vector": [0.5, -0.25, 0.0, 1.0],
        "n_events": 3,
        "updated_at": 1_500,
        "strongest_tags": [{"tag": "sci-fi", "score": 0.7123}, {"tag": "space", "score": 0.5}],
        "restock": [
            {"item_id": "milk", "last_purchase": 9, "interval_ms": 86_400_000, "purchases": 2}
        ],
    }
    assert exported["consent"]["channels"] == {"web": True}
    assert exported["contact_history"] == {"v": 1, "contacts": {"web": [900]}}
    assert [d["decision_id"] for d in exported["decisions"]] == ["d2", "d1"]
    assert exported["current_offers"]["message_id"] == "m1"
    assert exported["seen_items"] == {"i1": 7} and exported["purchased_items"] == {"i2": 8}


def test_an_unknown_user_exports_as_completed_with_empty_data() -> None:
    audit = json.loads(
        export_audit(request("export"), export_data(profile=None), 3_000).to_json_bytes()
    )
    assert audit["status"] == "completed"
    assert audit["data"] == {
        "profile": None,
        "consent": None,
        "contact_history": None,
        "decisions": [],
        "current_offers": None,
        "seen_items": {},
        "purchased_items": {},
        "sent_messages": [],
    }
