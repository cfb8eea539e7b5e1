"""Lift: holdout (control) against personalised, the arithmetic of the console's Lift page.

Per channel and group, the acceptance rate is ``accepted / sent`` (offer_accepted events over
messages sent) with its 95 % Wilson score interval; the uplift is the difference
``personalised - control`` (percentage points when shown) with Newcombe's hybrid score
interval (his method 10, built from the two Wilson intervals). The answer is *conclusive*
when that interval excludes 0.

Days still needed: the messages per group a two-sided test at 5 % with 80 % power needs to
detect the uplift seen so far (the usual normal-approximation formula for two proportions,
equal groups), less what each group has, at each group's current daily volume; the larger of
the two groups' answers. With a small control group this is conservative (the large group
carries less variance than the formula assumes). No estimate (``None``) without data in both
groups, with no difference seen, or without a time span; 0 once conclusive.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

Z_95 = 1.959963984540054
"""Two-sided 95 % normal quantile."""
Z_POWER_80 = 0.8416212335729143
"""One-sided normal quantile of 80 % power."""


@dataclass(frozen=True)
class Interval:
    """A closed interval ``[low, high]``."""

    low: float
    high: float

    def excludes_zero(self) -> bool:
        return self.low > 0.0 or self.high < 0.0


@dataclass(frozen=True)
class GroupCounts:
    """Messages sent to a group and the acceptances they drew."""

    sent: int
    accepted: int


@dataclass(frozen=True)
class ChannelCounts:
    """The counts of one channel (``"all"`` when the source does not split by channel)."""

    channel: str
    personalised: GroupCounts
    control: GroupCounts


@dataclass(frozen=True)
class GroupRate:
    """A group's acceptance rate and its 95 % Wilson interval (``None``: nothing sent)."""

    counts: GroupCounts
    rate: float | None
    interval: Interval | None


@dataclass(frozen=True)
class ChannelLift:
    """What the Lift page shows for one channel."""

    channel: str
    personalised: GroupRate
    control: GroupRate
    uplift: float | None
    """personalised rate - control rate (``None``: a group has no data)."""
    uplift_interval: Interval | None
    conclusive: bool
    days_needed: float | None
    """More days of traffic for a conclusive answer (0: conclusive; ``None``: no estimate)."""


def wilson(successes: int, trials: int, z: float = Z_95) -> Interval | None:
    """The Wilson score interval of ``successes / trials`` (``None`` when ``trials`` is 0)."""
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} / {trials}")
    if trials == 0:
        return None
    p = successes / trials
    z2 = z * z
    denominator = 1.0 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


def group_rate(counts: GroupCounts) -> GroupRate:
    """The group's rate and interval."""
    if counts.sent == 0:
        return GroupRate(counts, None, None)
    return GroupRate(counts, counts.accepted / counts.sent, wilson(counts.accepted, counts.sent))


def difference_interval(treated: GroupRate, control: GroupRate) -> Interval | None:
    """Newcombe's hybrid score interval of ``treated.rate - control.rate``."""
    if treated.rate is None or control.rate is None:
        return None
    assert treated.interval is not None and control.interval is not None
    p1, (l1, u1) = treated.rate, (treated.interval.low, treated.interval.high)
    p2, (l2, u2) = control.rate, (control.interval.low, control.interval.high)
    d = p1 - p2
    return Interval(
        d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
        d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2),
    )


def messages_per_group(p_control: float, p_treated: float) -> float | None:
    """Messages per group a two-sided 5 % test with 80 % power needs to detect the
    difference between the two rates (``None`` when they are equal)."""
    delta = abs(p_treated - p_control)
    if delta == 0:
        return None
    mean = (p_control + p_treated) / 2
    root = Z_95 * math.sqrt(2 * mean * (1 - mean)) + Z_POWER_80 * math.sqrt(
        p_control * (1 - p_control) + p_treated * (1 - p_treated)
    )
    return root * root / (delta * delta)


def days_needed(
    personalised: GroupRate, control: GroupRate, conclusive: bool, days_observed: float
) -> float | None:
    """More days of traffic until the answer is conclusive (see module doc)."""
    if conclusive:
        return 0.0
    if personalised.rate is None or control.rate is None or days_observed <= 0:
        return None
    needed = messages_per_group(control.rate, personalised.rate)
    if needed is None:
        return None
    days = 0.0
    for group in (personalised, control):
        per_day = group.counts.sent / days_observed
        days = max(days, max(0.0, needed - group.counts.sent) / per_day)
    return days


def channel_lift(counts: ChannelCounts, days_observed: float) -> ChannelLift:
    """The Lift page's row for one channel, from counts gathered over ``days_observed``."""
    treated, control = group_rate(counts.personalised), group_rate(counts.control)
    interval = difference_interval(treated, control)
    uplift = None
    if treated.rate is not None and control.rate is not None:
        uplift = treated.rate - control.rate
    conclusive = interval is not None and interval.excludes_zero()
    return ChannelLift(
        counts.channel,
        treated,
        control,
        uplift,
        interval,
        conclusive,
        days_needed(treated, control, conclusive, days_observed),
    )


def lift_table(channels: Iterable[ChannelCounts], days_observed: float) -> list[ChannelLift]:
    """One row per channel, in the order given."""
    return [channel_lift(c, days_observed) for c in channels]
