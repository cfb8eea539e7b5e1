from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.timestamps import MAX_TS_MS, format_rfc3339_ms, parse_rfc3339_ms, parse_timestamp

pytestmark = pytest.mark.unit

T0 = 1_714_564_800_000  # 2024-05-01T12:00:00Z


@pytest.mark.parametrize(
    "text",
    [
        "2024-05-01T12:00:00Z",
        "2024-05-01t12:00:00z",
        "2024-05-01T12:00:00.000Z",
        "2024-05-01T14:00:00+02:00",
        "2024-05-01T07:30:00-04:30",
        "2024-05-01T12:00:00-00:00",
        "2024-05-01T12:00:00.0009999Z",
    ],
)
def test_rfc3339_forms_of_the_same_instant_give_the_same_ms(text: str) -> None:
    assert parse_rfc3339_ms(text) == T0


def test_fraction_is_floored_to_the_millisecond() -> None:
    assert parse_rfc3339_ms("2024-05-01T12:00:00.123999999Z") == T0 + 123
    assert parse_rfc3339_ms("2024-05-01T12:00:00.5Z") == T0 + 500


@pytest.mark.parametrize(
    "text",
    [
        "2024-05-01T12:00:00",  # no offset: rejected, not guessed
        "2024-05-01",
        "2024-05-01 12:00:00Z",
        "2024-02-30T12:00:00Z",
        "2024-05-01T24:00:00Z",
        "2024-05-01T12:00:60Z",  # leap second
        "2024-05-01T12:00:00+24:00",
        "2024-05-01T12:00:00.Z",
        "20240501T120000Z",
        "1969-12-31T23:59:59Z",
        " 2024-05-01T12:00:00Z",
    ],
)
def test_malformed_or_out_of_range_rfc3339_is_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rfc3339_ms(text)


@pytest.mark.parametrize("value", [True, False, 1.5, 1e12, None, [1], -1, MAX_TS_MS + 1])
def test_non_integer_or_out_of_range_timestamps_are_rejected(value: object) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(value)


def test_integer_is_epoch_ms() -> None:
    assert parse_timestamp(T0) == T0
    assert parse_timestamp(0) == 0


def test_format_is_rfc3339_utc_with_milliseconds() -> None:
    assert format_rfc3339_ms(0) == "1970-01-01T00:00:00.000Z"
    assert format_rfc3339_ms(T0 + 7) == "2024-05-01T12:00:00.007Z"


@given(st.integers(min_value=0, max_value=MAX_TS_MS))
def test_format_then_parse_round_trips(ms: int) -> None:
    assert parse_timestamp(format_rfc3339_ms(ms)) == ms
