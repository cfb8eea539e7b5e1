"""Timestamps on the wire: RFC 3339 strings or epoch milliseconds, always stored as epoch ms.

Decisions (part of the contract):

* An RFC 3339 string **must carry an offset** (``Z`` or ``±HH:MM``); a string without one is
  rejected rather than guessed as UTC, because a missing offset is usually a producer bug
  that would silently shift events by hours. ``-00:00`` is read as UTC.
* The date/time separator is ``T`` or ``t`` (the RFC 3339 grammar), fractional seconds may have
  1 to 9 digits and are truncated (floored) to the millisecond. A leap second (``:60``) is
  rejected.
* An integer is epoch milliseconds UTC. Booleans and JSON floats are rejected.
* The accepted range is 1970-01-01T00:00:00.000Z (0) to 9999-12-31T23:59:59.999Z.
* Where a record's time meets the worker's clock (events, consent records, privacy requests),
  a record dated more than the allowed skew ahead of it is rejected (:func:`check_not_ahead`);
  old records are accepted: decay makes them count little, and they never move state back.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from app.core.errors import EventRejected, RejectReason

MIN_TS_MS = 0
"""Smallest accepted timestamp, epoch ms (1970-01-01T00:00:00.000Z)."""
MAX_TS_MS = 253_402_300_799_999
"""Largest accepted timestamp, epoch ms (9999-12-31T23:59:59.999Z)."""

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))",
    re.ASCII,  # \d is [0-9] only: no other script's digits
)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_MS_PER_DAY = 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _check_range(ms: int) -> int:
    if not MIN_TS_MS <= ms <= MAX_TS_MS:
        raise ValueError(f"timestamp out of range [{MIN_TS_MS}, {MAX_TS_MS}] epoch ms")
    return ms


def parse_rfc3339_ms(text: str) -> int:
    """Parse an RFC 3339 date-time with offset into epoch milliseconds UTC (floored).

    Raises ``ValueError`` for anything else (no offset, date only, leap second, bad date).
    """
    m = _RFC3339.fullmatch(text)
    if m is None:
        raise ValueError("not an RFC 3339 date-time with offset (e.g. 2024-05-01T12:00:00Z)")
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    try:
        days = date(year, month, day).toordinal() - _EPOCH_ORDINAL
    except ValueError as exc:
        raise ValueError(f"invalid date: {exc}") from None
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError("invalid time of day")
    fraction = m.group(7) or ""
    millis = int((fraction + "000")[:3])
    offset_ms = 0
    if m.group(9) is not None:
        off_h, off_m = int(m.group(10)), int(m.group(11))
        if off_h > 23 or off_m > 59:
            raise ValueError("invalid UTC offset")
        offset_ms = (off_h * 60 + off_m) * 60_000
        if m.group(9) == "-":
            offset_ms = -offset_ms
    ms = days * _MS_PER_DAY + ((hour * 60 + minute) * 60 + second) * 1000 + millis - offset_ms
    return _check_range(ms)


def parse_timestamp(value: object) -> int:
    """Normalise a wire timestamp (RFC 3339 string or integer epoch ms) to epoch ms UTC.

    Raises ``ValueError`` (which pydantic reports as a field error) for any other type,
    including ``bool`` and ``float``.
    """
    if isinstance(value, bool):
        raise ValueError("must be epoch milliseconds (integer) or an RFC 3339 string")
    if isinstance(value, int):
        return _check_range(value)
    if isinstance(value, str):
        return parse_rfc3339_ms(value)
    raise ValueError("must be epoch milliseconds (integer) or an RFC 3339 string")


def format_rfc3339_ms(ms: int) -> str:
    """Format epoch milliseconds as RFC 3339 UTC with millisecond precision.

    Example: ``0`` -> ``"1970-01-01T00:00:00.000Z"``.
    """
    dt = _EPOCH + timedelta(milliseconds=ms)
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T"
        f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}.{dt.microsecond // 1000:03d}Z"
    )


def check_not_ahead(ts_ms: int, now_ms: int, max_ahead_ms: int) -> None:
    """Raise :class:`~app.core.errors.EventRejected` (``FutureTimestamp``) when ``ts_ms`` is
    more than ``max_ahead_ms`` after ``now_ms`` (the worker's clock)."""
    ahead = ts_ms - now_ms
    if ahead > max_ahead_ms:
        raise EventRejected(
            RejectReason.FUTURE_TIMESTAMP,
            f"ts {format_rfc3339_ms(ts_ms)} is {ahead / 1000:.0f} s ahead of the worker's clock "
            f"(at most {max_ahead_ms / 1000:.0f} s allowed, NBO_MAX_CLOCK_SKEW_S)",
        )
