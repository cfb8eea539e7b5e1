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
``nbo_first_batch_started_seconds``. They restart at 0 with a worker; the Redis offer
statistics were not chosen because they are per offer and partition, decayed, and carry no
holdout group. Both counters carry a ``channel`` label: one row per channel, and a row
``all``; the channel of an acceptance is the one its event names (an event without one
counts in ``all`` only).
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


GroupChannel = tuple[str, str]
"""(holdout group, channel)."""


@dataclass(frozen=True)
class WorkerCounts:
    """One worker's holdout counters (messages sent and acceptances by group and channel)
    and when its first batch started (Unix seconds, 0: none yet)."""

    sent: Mapping[GroupChannel, float]
    accepted: Mapping[GroupChannel, float]
    first_batch_s: float


def worker_counts(text: str) -> WorkerCounts:
    """The holdout counters in one worker's Prometheus text (``ValueError`` if it does not
    parse). A series without a ``channel`` label (a worker of an older version) counts as
    channel :data:`ALL_CHANNELS`."""
    sent: dict[GroupChannel, float] = {}
    accepted: dict[GroupChannel, float] = {}
    first = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            k = (sample.labels.get("group", ""), sample.labels.get("channel", ALL_CHANNELS))
            if sample.name == SENT:
                sent[k] = sent.get(k, 0.0) + sample.value
            elif sample.name == FEEDBACK and sample.labels.get("type") == ACCEPTED:
                accepted[k] = accepted.get(k, 0.0) + sample.value
            elif sample.name == FIRST_BATCH:
                first = sample.value
    return WorkerCounts(sent, accepted, first)


def combine(
    workers: Iterable[WorkerCounts], now_s: float
) -> tuple[tuple[ChannelCounts, ...], float]:
    """The workers' counts summed, one row per channel that sent something (sorted) and a
    last row :data:`ALL_CHANNELS` over every channel, and the days since the earliest first
    batch (0 when none has run). Acceptances whose event named no channel (or a channel no
    message was sent on) count in the ``all`` row only."""
    sent: dict[GroupChannel, float] = {}
    accepted: dict[GroupChannel, float] = {}
    starts: list[float] = []
    for worker in workers:
        for k, n in worker.sent.items():
            sent[k] = sent.get(k, 0.0) + n
        for k, n in worker.accepted.items():
            accepted[k] = accepted.get(k, 0.0) + n
        if worker.first_batch_s > 0:
            starts.append(worker.first_batch_s)
    days = max(0.0, now_s - min(starts)) / DAY_S if starts else 0.0

    def counts(group: str, channel: str | None) -> GroupCounts:
        def total(table: Mapping[GroupChannel, float]) -> float:
            return sum(v for (g, c), v in table.items() if g == group and channel in (None, c))

        n = int(total(sent))
        # an acceptance of a message sent before a worker restarted can outnumber the sends
        return GroupCounts(n, min(n, int(total(accepted))))

    channels = sorted({c for _, c in sent} - {ALL_CHANNELS})
    rows = [ChannelCounts(c, counts(PERSONALISED, c), counts(CONTROL, c)) for c in channels]
    rows.append(ChannelCounts(ALL_CHANNELS, counts(PERSONALISED, None), counts(CONTROL, None)))
    return tuple(rows), days
