from __future__ import annotations

from datetime import time

import pytest

from app.core.enums import Channel
from app.core.events import UserEvent
from app.policy.config import QuietHours
from app.policy.quiet_hours import (
    is_quiet_time,
    local_ms_of_day,
    quiet_channels,
    resolve_zone,
    tz_hint,
    zone_or_none,
)
from tests.policy.builders import HOUR, at, policy

pytestmark = pytest.mark.unit

QUIET = policy().quiet_hours  # 21:00 - 08:00 on email, push, sms
UTC = resolve_zone("UTC")


@pytest.mark.parametrize(
    ("clock", "quiet"),
    [
        ("20:59:59.999", False),
        ("21:00:00.000", True),
        ("23:59:59.999", True),
        ("00:00:00.000", True),
        ("07:59:59.999", True),
        ("08:00:00.000", False),
        ("12:00:00.000", False),
    ],
)
def test_quiet_hours_cross_midnight_with_inclusive_start_and_exclusive_end(
    clock: str, quiet: bool
) -> None:
    assert is_quiet_time(at(f"2024-01-15T{clock}+00:00"), UTC, QUIET) is quiet


def test_the_same_instant_is_quiet_in_tokyo_but_not_in_london() -> None:
    noon_utc = at("2024-01-15T12:00:00+00:00")  # 21:00 in Tokyo
    assert not is_quiet_time(noon_utc, resolve_zone("Europe/London"), QUIET)
    assert is_quiet_time(noon_utc, resolve_zone("Asia/Tokyo"), QUIET)
    early = at("2024-01-15T23:30:00+00:00")  # 08:30 next day in Tokyo
    assert is_quiet_time(early, resolve_zone("Europe/London"), QUIET)
    assert not is_quiet_time(early, resolve_zone("Asia/Tokyo"), QUIET)


def test_london_summer_time_shifts_quiet_hours_by_an_hour() -> None:
    london = resolve_zone("Europe/London")
    summer = at("2024-07-15T20:30:00+00:00")  # 21:30 BST
    winter = at("2024-01-15T20:30:00+00:00")  # 20:30 GMT
    assert is_quiet_time(summer, london, QUIET)
    assert not is_quiet_time(winter, london, QUIET)
    assert local_ms_of_day(summer, london) == 21 * HOUR + 30 * 60_000


def test_a_window_within_one_day_and_an_empty_window() -> None:
    lunch = QuietHours(start=time(12), end=time(14))
    assert is_quiet_time(at("2024-01-15T13:00:00+00:00"), UTC, lunch)
    assert not is_quiet_time(at("2024-01-15T14:00:00+00:00"), UTC, lunch)
    never = QuietHours(start=time(9), end=time(9))
    assert not is_quiet_time(at("2024-01-15T09:00:00+00:00"), UTC, never)


def test_only_the_configured_channels_are_quiet() -> None:
    night = at("2024-01-15T23:00:00+00:00")
    assert quiet_channels(night, UTC, QUIET) == {Channel.EMAIL, Channel.PUSH, Channel.SMS}
    assert quiet_channels(at("2024-01-15T10:00:00+00:00"), UTC, QUIET) == frozenset()


@pytest.mark.parametrize(
    "bad", [None, "", "Mars/Olympus", "Europe", "../../etc/passwd", "/etc/localtime", "x" * 65]
)
def test_invalid_zone_names_are_skipped(bad: str | None) -> None:
    assert zone_or_none(bad) is None
    assert resolve_zone(bad, "Asia/Tokyo").key == "Asia/Tokyo"
    assert resolve_zone(bad, default="Europe/Paris").key == "Europe/Paris"


def test_first_valid_zone_wins() -> None:
    assert resolve_zone("Asia/Tokyo", "Europe/London").key == "Asia/Tokyo"
    assert resolve_zone(None, None).key == "UTC"


def test_tz_hint_reads_a_string_context_tz_only() -> None:
    base = {"event_id": "e", "user_id": "u", "type": "view", "item_id": "i", "ts": 0}
    assert tz_hint(UserEvent.model_validate({**base, "context": {"tz": "Asia/Tokyo"}})) == (
        "Asia/Tokyo"
    )
    assert tz_hint(UserEvent.model_validate({**base, "context": {"tz": 9}})) is None
    assert tz_hint(UserEvent.model_validate(base)) is None
