from __future__ import annotations

import json
from enum import StrEnum

import pytest

from app.core.enums import Channel
from app.core.errors import EventRejected, RejectReason
from app.policy.consent import (
    ConsentDefaults,
    channel_consented,
    consented_channels,
    decode_consent,
    preference_order,
    profiling_allowed,
    supersedes,
)
from tests.policy.builders import consent

pytestmark = pytest.mark.unit

DEFAULTS = ConsentDefaults()


def raw(**fields: object) -> bytes:
    body: dict[str, object] = {
        "user_id": "u1",
        "channels": {"email": True, "push": False},
        "ts": "2024-05-01T12:00:00Z",
    }
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


def test_consent_record_decodes_with_optional_fields() -> None:
    record = decode_consent(
        raw(objection=False, tz="Europe/London", source="signup-form", schema_version=1)
    )
    assert record.user_id == "u1"
    assert record.channels == {Channel.EMAIL: True, Channel.PUSH: False}
    assert record.tz == "Europe/London"
    assert record.source == "signup-form"
    assert record.ts_ms == 1_714_564_800_000
    assert record.objection is False


def test_consent_ts_may_be_epoch_ms_and_round_trips_in_order() -> None:
    record = decode_consent(raw(ts=5, channels={"web": False, "sms": True, "email": True}))
    assert record.ts_ms == 5
    again = decode_consent(record.to_json_bytes())
    assert again == record
    assert list(again.channels) == [Channel.WEB, Channel.SMS, Channel.EMAIL]


def test_unknown_channel_names_and_fields_are_ignored() -> None:
    record = decode_consent(raw(channels={"fax": True, "sms": True}, extra="x"))
    assert record.channels == {Channel.SMS: True}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (raw(channels={"email": "yes"}), RejectReason.SCHEMA_VIOLATION),
        (raw(channels={"email": 1}), RejectReason.SCHEMA_VIOLATION),
        (raw(objection="false"), RejectReason.SCHEMA_VIOLATION),
        (raw(ts=None), RejectReason.SCHEMA_VIOLATION),
        (raw(ts="2024-05-01T12:00:00"), RejectReason.SCHEMA_VIOLATION),
        (raw(user_id="bad id"), RejectReason.SCHEMA_VIOLATION),
        (raw(channels=None), RejectReason.SCHEMA_VIOLATION),
        (raw(schema_version=2), RejectReason.UNSUPPORTED_SCHEMA_VERSION),
        (b"[]", RejectReason.INVALID_JSON),
        (b"{", RejectReason.INVALID_JSON),
        (b"", RejectReason.EMPTY_VALUE),
        (None, RejectReason.EMPTY_VALUE),
    ],
)
def test_bad_consent_values_are_rejected_like_other_inputs(
    body: bytes | None, reason: RejectReason
) -> None:
    with pytest.raises(EventRejected) as info:
        decode_consent(body)
    assert info.value.reason_class == reason


def test_without_a_record_only_opt_out_channels_are_allowed() -> None:
    assert consented_channels(None, DEFAULTS) == {Channel.WEB, Channel.IN_APP}


def test_opt_in_channels_need_an_explicit_true() -> None:
    record = consent({"email": True})
    assert channel_consented(record, Channel.EMAIL, DEFAULTS)
    assert not channel_consented(record, Channel.PUSH, DEFAULTS)
    assert not channel_consented(record, Channel.SMS, DEFAULTS)


def test_explicit_false_on_an_opt_out_channel_blocks_it() -> None:
    record = consent({"web": False})
    assert not channel_consented(record, Channel.WEB, DEFAULTS)
    assert channel_consented(record, Channel.IN_APP, DEFAULTS)


def test_consent_defaults_are_configurable() -> None:
    defaults = ConsentDefaults(push=True, web=False)
    assert consented_channels(None, defaults) == {Channel.PUSH, Channel.IN_APP}


def test_objection_forbids_profiling_and_no_record_allows_it() -> None:
    assert not profiling_allowed(consent({"email": True}, objection=True))
    assert profiling_allowed(consent({"email": True}))
    assert profiling_allowed(None)


def test_newer_or_equal_consent_supersedes_older() -> None:
    old = consent(ts=100)
    assert supersedes(consent(ts=100), old)
    assert supersedes(consent(ts=101), old)
    assert not supersedes(consent(ts=99), old)
    assert supersedes(old, None)


def test_preference_order_is_stated_true_channels_then_default_order() -> None:
    record = consent({"sms": True, "web": False, "email": True})
    order = preference_order(record, (Channel.WEB, Channel.PUSH))
    assert order == (Channel.SMS, Channel.EMAIL, Channel.WEB, Channel.PUSH, Channel.IN_APP)
    assert preference_order(None, (Channel.PUSH,))[0] is Channel.PUSH


def test_every_channel_has_a_consent_default() -> None:
    ConsentDefaults.check_against(Channel)  # raises otherwise


def test_a_channel_without_a_consent_default_stops_start_up_not_a_decision() -> None:
    class MoreChannels(StrEnum):
        EMAIL = "email"
        FAX = "fax"

    with pytest.raises(ValueError, match="consent_defaults has no entry for fax: add one"):
        ConsentDefaults.check_against(MoreChannels)
