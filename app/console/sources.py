"""The ports the console's pages read through, their in-memory twins, and the pure reading
of the workers' Prometheus text.

* :class:`PolicySource`: the contact policy in force and the score weights (production:
  ``agents.console.sources.SettingsPolicySource``, the loader the workers use).
* :class:`LiftSource`: the holdout counts behind the Lift page (production:
  ``agents.console.sources.MetricsLiftSource``, which scrapes the workers' ``/metrics``).

Source of the Lift counts: the workers' counters ``nbo_offers_sent_by_group_total{group}``
(messages sent per holdout group, counted once per batch from what was published) and
``nbo_offer_feedback_by_group_total{group,type="offer_accepted"}`` (acceptances applied, each
event once), summed over the workers; the time they cover runs from the earliest
``nbo_first_batch_started_seconds``. They do not split by channel yet (one row, ``all``) and
restart at 0 with a worker; the Redis offer statistics were not chosen because they are per
offer and partition, decayed, and carry no holdout group.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client.parser import text_string_to_metric_families

from app.console.lift import ChannelCounts, GroupCounts
from app.core.holdout import CONTROL, PERSONALISED
from app.policy.config import ContactPolicy

ALL_CHANNELS = "all"
SENT = "nbo_offers_sent_by_group_total"
FEEDBACK = "nbo_offer_feedback_by_group_total"
FIRST_BATCH = "nbo_first_batch_started_seconds"
ACCEPTED = "offer_accepted"
DAY_S = 86_400.0


@dataclass(frozen=True)
class PolicyView:
    """What the Policy page shows: the policy, where it came from, the score weights."""

    policy: ContactPolicy
    source: str
    weights: Mapping[str, float]


class PolicySource(Protocol):
    def policy_view(self) -> PolicyView: ...


@dataclass(frozen=True)
class LiftCounts:
    """The Lift page's input: counts per channel over ``days_observed``; ``read`` and
    ``failed`` name the endpoints that answered and those that did not."""

    channels: tuple[ChannelCounts, ...]
    days_observed: float
    read: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()


class LiftSource(Protocol):
    async def lift_counts(self) -> LiftCounts: ...


@dataclass
class MemoryPolicySource:
    """In-memory twin of :class:`PolicySource`."""

    view: PolicyView

    def policy_view(self) -> PolicyView:
        return self.view


@dataclass
class MemoryLiftSource:
    """In-memory twin of :class:`LiftSource`."""

    counts: LiftCounts = field(default_factory=lambda: LiftCounts((), 0.0))

    async def lift_counts(self) -> LiftCounts:
        return self.counts


@dataclass(frozen=True)
class WorkerCounts:
    """One worker's holdout counters (messages sent and acceptances by group) and when its
    first batch started (Unix seconds, 0: none yet)."""

    sent: Mapping[str, float]
    accepted: Mapping[str, float]
    first_batch_s: float


def worker_counts(text: str) -> WorkerCounts:
    """The holdout counters in one worker's Prometheus text (``ValueError`` if it does not
    parse)."""
    sent: dict[str, float] = {}
    accepted: dict[str, float] = {}
    first = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            group = sample.labels.get("group", "")
            if sample.name == SENT:
                sent[group] = sent.get(group, 0.0) + sample.value
            elif sample.name == FEEDBACK and sample.labels.get("type") == ACCEPTED:
                accepted[group] = accepted.get(group, 0.0) + sample.value
            elif sample.name == FIRST_BATCH:
                first = sample.value
    return WorkerCounts(sent, accepted, first)


def combine(workers: Iterable[WorkerCounts], now_s: float) -> tuple[ChannelCounts, float]:
    """The workers' counts summed (one channel row, :data:`ALL_CHANNELS`) and the days since
    the earliest first batch (0 when none has run)."""
    sent = {PERSONALISED: 0.0, CONTROL: 0.0}
    accepted = {PERSONALISED: 0.0, CONTROL: 0.0}
    starts: list[float] = []
    for worker in workers:
        for group in sent:
            sent[group] += worker.sent.get(group, 0.0)
            accepted[group] += worker.accepted.get(group, 0.0)
        if worker.first_batch_s > 0:
            starts.append(worker.first_batch_s)
    days = max(0.0, now_s - min(starts)) / DAY_S if starts else 0.0

    def counts(group: str) -> GroupCounts:
        n = int(sent[group])
        # an acceptance of a message sent before a worker restarted can outnumber the sends
        return GroupCounts(n, min(n, int(accepted[group])))

    return ChannelCounts(ALL_CHANNELS, counts(PERSONALISED), counts(CONTROL)), days
