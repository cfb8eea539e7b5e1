"""The chaos run's bookkeeping: what was produced, what the engine applied, and the verdict.

Pure: no Kafka, no Redis. Every event of the chaos workload has a known id and user; the run
knows, per user, how many distinct events were produced (acknowledged by the broker), and reads
back each user's ``n_events`` (events applied) from Redis once the consumer group's lag is 0.
A user with fewer applied than produced lost events; with more, an event was applied twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Produced:
    """Distinct events produced per user (an event re-sent after a failed send counts once)."""

    per_user: dict[str, int] = field(default_factory=dict)
    _ids: set[str] = field(default_factory=set, repr=False)

    def add(self, user: str, event_id: str) -> None:
        """Count ``event_id`` of ``user`` once, however often it was sent."""
        if event_id in self._ids:
            return
        self._ids.add(event_id)
        self.per_user[user] = self.per_user.get(user, 0) + 1

    @property
    def total(self) -> int:
        return len(self._ids)


@dataclass(frozen=True)
class Tally:
    """Produced against applied, summed over users."""

    produced: int
    applied: int
    lost: int
    applied_twice: int


def tally(produced: Mapping[str, int], applied: Mapping[str, int]) -> Tally:
    """Compare per user: ``lost`` sums the shortfalls, ``applied_twice`` the excesses (so a
    loss and a double count of two users never cancel out)."""
    lost = twice = 0
    for user, want in produced.items():
        got = applied.get(user, 0)
        lost += max(0, want - got)
        twice += max(0, got - want)
    twice += sum(count for user, count in applied.items() if user not in produced)
    return Tally(sum(produced.values()), sum(applied.values()), lost, twice)


@dataclass(frozen=True)
class Trend:
    """A least-squares line through samples over time: ``slope`` per minute, ``start`` the
    fitted value at the first sample, ``change`` the fitted change over the whole span."""

    slope_per_min: float
    start: float
    change: float
    samples: int


def trend(times_s: Sequence[float], values: Sequence[float]) -> Trend:
    """The straight line through ``(times_s, values)`` (at least two samples)."""
    if len(times_s) != len(values) or len(values) < 2:
        raise ValueError("a trend needs two samples or more, as many times as values")
    t = np.asarray(times_s, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    minutes = (t - t[0]) / 60.0
    if np.ptp(minutes) == 0:
        raise ValueError("the samples span no time")
    slope, intercept = np.polyfit(minutes, v, 1)
    return Trend(float(slope), float(intercept), float(slope * minutes[-1]), len(values))


@dataclass(frozen=True)
class SoakRule:
    """When a soak counts as flat: memory may grow by at most ``memory_share`` of its fitted
    start (or ``memory_floor_mb``, whichever is larger) over the soak; the p95 latency of the
    last third may be at most ``latency_factor`` x that of the first third plus
    ``latency_slack_ms``."""

    memory_share: float = 0.05
    memory_floor_mb: float = 10.0
    latency_factor: float = 1.5
    latency_slack_ms: float = 50.0

    def memory_flat(self, rss_mb: Trend) -> bool:
        return rss_mb.change <= max(self.memory_share * rss_mb.start, self.memory_floor_mb)

    def latency_flat(self, first_p95_ms: float, last_p95_ms: float) -> bool:
        return last_p95_ms <= self.latency_factor * first_p95_ms + self.latency_slack_ms


@dataclass(frozen=True)
class Verdict:
    """Whether a scenario passed, and why not."""

    passed: bool
    reasons: tuple[str, ...] = ()


def verdict(
    counts: Tally,
    *,
    poison_sent: int,
    poison_dead_lettered: int,
    other_dead_letters: int,
    unasked_restarts: int,
    recovered: bool,
    flat: bool = True,
) -> Verdict:
    """The pass rule: 0 lost, 0 applied twice, every poison record dead-lettered (and nothing
    else), no worker restart that was not asked for, recovered in time, and (soak) flat."""
    reasons = []
    if counts.lost:
        reasons.append(f"{counts.lost} lost")
    if counts.applied_twice:
        reasons.append(f"{counts.applied_twice} applied twice")
    if poison_dead_lettered != poison_sent:
        reasons.append(f"{poison_dead_lettered} of {poison_sent} poison records dead-lettered")
    if other_dead_letters:
        reasons.append(f"{other_dead_letters} good records dead-lettered")
    if unasked_restarts:
        reasons.append(f"{unasked_restarts} worker restarts not asked for")
    if not recovered:
        reasons.append("did not recover in time")
    if not flat:
        reasons.append("memory or latency not flat")
    return Verdict(not reasons, tuple(reasons))
