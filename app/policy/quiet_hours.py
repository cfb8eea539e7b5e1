"""Quiet hours in the user's local time.

The zone is the first valid IANA name of: the triggering event's ``context.tz``, the consent
record's ``tz``, the policy's ``default_tz`` (UTC by default). An unknown or malformed name
is skipped, never an error. Local wall-clock time follows the zone's DST rules.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from app.core.enums import Channel
from app.core.events import UserEvent
from app.policy.config import QuietHours

_MS_PER_DAY = 86_400_000
_MAX_TZ_CHARS = 64


def zone_or_none(name: str | None) -> ZoneInfo | None:
    """The zone named ``name``, or ``None`` if it is missing, unknown or malformed."""
    if not name or len(name) > _MAX_TZ_CHARS:
        return None
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        return None


def resolve_zone(*names: str | None, default: str = "UTC") -> ZoneInfo:
    """The first valid zone of ``names``, else ``default`` (which must be valid)."""
    for name in names:
        zone = zone_or_none(name)
        if zone is not None:
            return zone
    return ZoneInfo(default)


def tz_hint(event: UserEvent) -> str | None:
    """The event's ``context.tz`` when it is a string."""
    value = event.context.get("tz") if event.context else None
    return value if isinstance(value, str) else None


def _ms_of_day(t: time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1000 + t.microsecond // 1000


def local_ms_of_day(now_ms: int, zone: ZoneInfo) -> int:
    """Milliseconds since local midnight in ``zone`` at ``now_ms``."""
    local = datetime.fromtimestamp(now_ms / 1000, tz=UTC).astimezone(zone)
    return _ms_of_day(local.time())


def is_quiet_time(now_ms: int, zone: ZoneInfo, quiet: QuietHours) -> bool:
    """Whether ``now_ms`` falls in ``[start, end)`` local time (crossing midnight if
    ``start > end``; never when ``start == end``)."""
    start, end = _ms_of_day(quiet.start), _ms_of_day(quiet.end)
    t = local_ms_of_day(now_ms, zone)
    if start < end:
        return start <= t < end
    if start > end:
        return t >= start or t < end
    return False


def quiet_channels(now_ms: int, zone: ZoneInfo, quiet: QuietHours) -> frozenset[Channel]:
    """The channels that must stay quiet at ``now_ms`` (empty outside quiet hours)."""
    return quiet.channels if is_quiet_time(now_ms, zone, quiet) else frozenset()
