"""The Lift page's arithmetic on hand examples."""

from __future__ import annotations

import pytest

from app.console.lift import (
    ChannelCounts,
    GroupCounts,
    channel_lift,
    days_needed,
    group_rate,
    messages_per_group,
    wilson,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [
        (50, 100, 0.4038, 0.5962),  # the textbook half
        (0, 10, 0.0, 0.2775),  # none accepted: still an upper bound
        (10, 10, 0.7225, 1.0),
        (1, 20, 0.0089, 0.2361),
    ],
)
def test_wilson_intervals_match_the_published_values(
    successes: int, trials: int, low: float, high: float
) -> None:
    interval = wilson(successes, trials)
    assert interval is not None
    assert interval.low == pytest.approx(low, abs=1e-4)
    assert interval.high == pytest.approx(high, abs=1e-4)


def test_a_group_without_messages_has_no_rate_and_no_interval() -> None:
    assert wilson(0, 0) is None
    rate = group_rate(GroupCounts(sent=0, accepted=0))
    assert rate.rate is None and rate.interval is None


def test_more_acceptances_than_messages_are_refused() -> None:
    with pytest.raises(ValueError):
        wilson(3, 2)


def test_the_uplift_interval_is_newcombes_on_his_worked_example() -> None:
    # Newcombe (1998), example (e): 56/70 against 48/80 -> 0.2000 (0.0524 to 0.3339)
    row = channel_lift(ChannelCounts("email", GroupCounts(70, 56), GroupCounts(80, 48)), 1.0)
    assert row.uplift == pytest.approx(0.2)
    assert row.uplift_interval is not None
    assert row.uplift_interval.low == pytest.approx(0.0524, abs=1e-4)
    assert row.uplift_interval.high == pytest.approx(0.3339, abs=1e-4)
    assert row.conclusive and row.days_needed == 0.0


def test_no_data_in_a_group_gives_no_uplift_and_no_estimate() -> None:
    row = channel_lift(ChannelCounts("sms", GroupCounts(500, 60), GroupCounts(0, 0)), 3.0)
    assert row.personalised.rate == pytest.approx(0.12)
    assert row.control.rate is None
    assert row.uplift is None and row.uplift_interval is None
    assert not row.conclusive and row.days_needed is None


def test_ten_against_twelve_percent_needs_3841_messages_per_group() -> None:
    # the usual two-proportion sample size (5 % two-sided, 80 % power)
    needed = messages_per_group(0.10, 0.12)
    assert needed is not None and round(needed) == 3841


def test_days_needed_is_the_missing_messages_at_the_current_daily_volume() -> None:
    # 1,000 messages a group over 10 days (100 a day): 2,841 more each -> 28.4 days
    row = channel_lift(ChannelCounts("push", GroupCounts(1000, 120), GroupCounts(1000, 100)), 10.0)
    assert not row.conclusive
    assert row.days_needed == pytest.approx(28.41, abs=0.01)


def test_the_smaller_group_sets_the_days_needed() -> None:
    # control gets 20 messages a day, personalised 380: control needs (3841 - 200) / 20 days
    row = channel_lift(ChannelCounts("push", GroupCounts(3800, 456), GroupCounts(200, 20)), 10.0)
    assert row.days_needed == pytest.approx((3840.9 - 200) / 20, rel=1e-3)


def test_no_difference_seen_or_no_time_span_gives_no_estimate() -> None:
    same = group_rate(GroupCounts(1000, 100))
    assert days_needed(same, same, conclusive=False, days_observed=5.0) is None
    treated = group_rate(GroupCounts(1000, 120))
    assert days_needed(treated, same, conclusive=False, days_observed=0.0) is None
