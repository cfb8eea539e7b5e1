"""Feedback on offers and exploration by Thompson sampling (pure: numpy and pydantic only).

**Feedback.** Every ``offer_*`` event updates its offer's response statistics
(:class:`OfferStats`): decayed counts of impressions, clicks and accepts. A dismissal counts
as one more impression without a success: an impression that was then dismissed counts as
two failed trials, so an explicit "no" weighs twice a silent one.

**Decay** (event time, never the wall clock, the same rule as the user profiles): a count
observed at ``ts`` weighs ``2^(-(t - ts)/h)`` at time ``t`` (``h``: ``half_life_ms``, default
7 days). Stats are stored as values referenced to a time ``t_ms``; merging two stats brings
both to the later reference (:func:`merge`), so the result does not depend on how events were
batched or in which order batches arrive (a late batch just adds decayed amounts).

**Success** of an offer = ``max(clicks, accepts)``: a click and an accept usually belong to
the same impression (click, then accept on the landing page), so summing them would count
one success twice; an accept without a click (an in-app "accept" button) still counts.
``failures = max(impressions - successes, 0)``.

**Exploration.** The acceptance rate of an offer has the posterior
``Beta(prior_alpha + successes, prior_beta + failures)``. Per batch, one rate ``theta`` is drawn
per offer and shared by all the users of the batch (U x N Beta draws per batch would cost U
times more for little gain: users of one batch are a random sample anyway, and the next batch
draws again). The score part is ``weight * theta``: Thompson sampling proper, so

* offers that people take up rise (their draws concentrate on a high rate), offers shown
  often and never taken sink (draws near 0): feedback moves the expected ranking;
* an offer with no data draws from the prior, whose mean is deliberately low (default
  ``Beta(1, 9)``: mean 0.1, about a typical good response rate, spread 0.09): a new offer
  gets a fair chance (it beats proven poor offers and sometimes proven good ones) without
  flooding users, which a uniform ``Beta(1, 1)`` prior (mean 0.5, far above any real rate)
  would do, especially while feedback is delayed (e-mail impressions reported hours later);
* the part is in ``[0, weight]``: it moves a score by at most ``weight``.

Typical use: :func:`posterior` once per refresh of the stored stats (O(N) Python), then per
batch ``exploration_scores(post, batch_rng(cfg.seed, batch_no), cfg.weight)`` (N numpy draws),
passed to :func:`app.core.scoring.score_batch` as ``exploration``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from app.core import defaults
from app.core.enums import EventType
from app.core.events import UserEvent
from app.core.profile import decay

F64 = npt.NDArray[np.float64]
DAY_MS = 86_400_000
DEFAULT_HALF_LIFE_MS = defaults.OFFER_STATS_HALF_LIFE_S * 1000
"""Default half-life of offer feedback: 7 days of event time."""


class ExplorationConfig(BaseModel):
    """Parameters of offer feedback and exploration."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    weight: float = Field(default=defaults.EXPLORATION_WEIGHT, ge=0.0)
    """Weight of the exploration part: it moves a score by at most ``weight`` either way
    (default 0.1; 0 disables exploration)."""
    prior_alpha: float = Field(default=1.0, gt=0.0)
    """Beta prior pseudo-successes of every offer (default 1)."""
    prior_beta: float = Field(default=9.0, gt=0.0)
    """Beta prior pseudo-failures of every offer (default 9: prior mean 0.1, see module
    doc)."""
    half_life_ms: int = Field(default=DEFAULT_HALF_LIFE_MS, gt=0)
    """Half-life of feedback counts, event-time ms (default 7 days)."""
    seed: int | None = Field(default=None, ge=0)
    """Seed of the per-batch random draws (default ``None``: OS entropy, not reproducible)."""


@dataclass(frozen=True, slots=True)
class OfferStats:
    """Decayed response counts of one offer, valued at event time ``t_ms`` (epoch ms).

    All counts are >= 0 floats (decayed counts are fractional); the zero value is "no data".
    """

    impressions: float = 0.0
    clicks: float = 0.0
    accepts: float = 0.0
    t_ms: int = 0

    @property
    def successes(self) -> float:
        """``max(clicks, accepts)`` (see module doc)."""
        return max(self.clicks, self.accepts)

    @property
    def failures(self) -> float:
        """``max(impressions - successes, 0)``."""
        return max(self.impressions - self.successes, 0.0)

    def at(self, t_ms: int, half_life_ms: float) -> OfferStats:
        """These counts decayed to ``t_ms`` (ms); a ``t_ms`` before ``self.t_ms`` returns
        ``self`` (counts never grow back)."""
        if t_ms <= self.t_ms:
            return self
        f = decay(t_ms - self.t_ms, half_life_ms)
        return OfferStats(self.impressions * f, self.clicks * f, self.accepts * f, t_ms)


def merge(a: OfferStats, b: OfferStats, half_life_ms: float) -> OfferStats:
    """The sum of two stats at the later of their times:
    ``v = v_a * 2^(-(t - t_a)/h) + v_b * 2^(-(t - t_b)/h)`` with ``t = max(t_a, t_b)``.

    Commutative and associative (up to float rounding). ``offer_stats.lua`` applies the same
    formula in Redis.
    """
    t = max(a.t_ms, b.t_ms)
    fa = decay(t - a.t_ms, half_life_ms)
    fb = decay(t - b.t_ms, half_life_ms)
    return OfferStats(
        a.impressions * fa + b.impressions * fb,
        a.clicks * fa + b.clicks * fb,
        a.accepts * fa + b.accepts * fb,
        t,
    )


def merge_all(
    parts: Iterable[Mapping[str, OfferStats]], half_life_ms: float
) -> dict[str, OfferStats]:
    """Per offer, the :func:`merge` of its stats over all ``parts`` (e.g. partitions)."""
    out: dict[str, OfferStats] = {}
    for part in parts:
        for offer_id, stats in part.items():
            seen = out.get(offer_id)
            out[offer_id] = stats if seen is None else merge(seen, stats, half_life_ms)
    return out


_COUNTS: dict[EventType, tuple[float, float, float]] = {
    EventType.OFFER_IMPRESSION: (1.0, 0.0, 0.0),
    EventType.OFFER_CLICK: (0.0, 1.0, 0.0),
    EventType.OFFER_ACCEPTED: (0.0, 0.0, 1.0),
    EventType.OFFER_DISMISSED: (1.0, 0.0, 0.0),  # one more trial, no success
}


def offer_deltas(events: Iterable[UserEvent], half_life_ms: float) -> dict[str, OfferStats]:
    """Per offer, the stats of ``events`` alone, valued at the offer's latest event time.

    Offer impressions and dismissals add an impression, clicks a click, accepts an accept,
    each decayed from its ``ts_ms``; other events are ignored.
    """
    counted = [
        (e.offer_id, e.ts_ms, _COUNTS[e.type])
        for e in events
        if e.type in _COUNTS and e.offer_id is not None
    ]
    latest: dict[str, int] = {}
    for offer_id, ts_ms, _ in counted:
        latest[offer_id] = max(latest.get(offer_id, ts_ms), ts_ms)
    sums = {o: OfferStats(t_ms=t) for o, t in latest.items()}
    for offer_id, ts_ms, (imp, clk, acc) in counted:
        f = decay(latest[offer_id] - ts_ms, half_life_ms)
        s = sums[offer_id]
        sums[offer_id] = OfferStats(
            s.impressions + imp * f, s.clicks + clk * f, s.accepts + acc * f, s.t_ms
        )
    return sums


def apply_feedback(
    stats: Mapping[str, OfferStats], events: Iterable[UserEvent], half_life_ms: float
) -> dict[str, OfferStats]:
    """``stats`` updated with a batch of events (:func:`offer_deltas` merged in); a new dict."""
    return merge_all([stats, offer_deltas(events, half_life_ms)], half_life_ms)


@dataclass(frozen=True)
class OfferStatsUpdate:
    """The stats deltas of one (topic, partition) in one batch, for an idempotent write.

    ``first_offset`` / ``last_offset``: lowest / highest Kafka offset of the records the
    deltas summarise. A store writes the deltas only if its stored offset for the partition
    is below ``first_offset``, then stores ``last_offset`` (see :class:`StatsApplyOutcome`).
    ``topic_id``: the Kafka topic id of ``topic`` ("" if unknown); a stored offset recorded
    under another topic id (the topic was recreated) counts as none, the counts are kept.
    """

    topic: str
    partition: int
    first_offset: int
    last_offset: int
    stats: Mapping[str, OfferStats] = field(default_factory=dict)
    topic_id: str = ""

    def __post_init__(self) -> None:
        if not 0 <= self.first_offset <= self.last_offset:
            raise ValueError(
                f"need 0 <= first_offset <= last_offset, got {self.first_offset}, "
                f"{self.last_offset}"
            )

    @property
    def source(self) -> tuple[str, int]:
        """``(topic, partition)``."""
        return (self.topic, self.partition)


def check_distinct(updates: Sequence[OfferStatsUpdate]) -> None:
    """Raise ``ValueError`` if two updates share a (topic, partition): a store may write them
    in any order (concurrently on a cluster), so the later one could pass for a duplicate."""
    sources = [u.source for u in updates]
    if len(set(sources)) != len(sources):
        raise ValueError("one update per (topic, partition) per call")


@dataclass(frozen=True)
class StatsApplyOutcome:
    """Result of writing :class:`OfferStatsUpdate` s, by ``(topic, partition)``.

    ``applied``: written. ``duplicates``: ``last_offset <= stored offset``: already written
    (by an earlier call or a retry); nothing written. ``overlaps``: ``first_offset <= stored <
    last_offset``: part of the records were already written, so nothing was written; value:
    the stored offset. Redo those with the records after it (``partition_updates(...,
    after=outcome.overlaps_of(topic))``).
    """

    applied: frozenset[tuple[str, int]] = frozenset()
    duplicates: frozenset[tuple[str, int]] = frozenset()
    overlaps: Mapping[tuple[str, int], int] = field(default_factory=dict)

    def overlaps_of(self, topic: str) -> dict[int, int]:
        """``overlaps`` of ``topic`` as partition -> stored offset."""
        return {p: off for (t, p), off in self.overlaps.items() if t == topic}


def partition_updates(
    topic: str,
    records: Iterable[tuple[int, int, UserEvent]],
    half_life_ms: float,
    after: Mapping[int, int] | None = None,
    topic_id: str = "",
) -> list[OfferStatsUpdate]:
    """One update per partition that has offer events among ``records``.

    ``records``: ``(partition, offset, event)`` of a batch. ``after``: partition -> offset;
    records at or below it are left out (the redo of an overlap). The offsets of an update
    span its offer events only (enough: a store's offset is always that of an offer event).
    ``topic_id``: the Kafka topic id of ``topic`` ("" if unknown).
    """
    skip = after or {}
    by_partition: dict[int, list[tuple[int, UserEvent]]] = {}
    for partition, offset, event in records:
        if event.type in _COUNTS and offset > skip.get(partition, -1):
            by_partition.setdefault(partition, []).append((offset, event))
    return [
        OfferStatsUpdate(
            topic,
            partition,
            min(o for o, _ in rows),
            max(o for o, _ in rows),
            offer_deltas((e for _, e in rows), half_life_ms),
            topic_id,
        )
        for partition, rows in sorted(by_partition.items())
    ]


@dataclass(frozen=True, eq=False)
class Posterior:
    """Beta posterior of each offer's acceptance rate, aligned to an array of offer ids."""

    alpha: F64
    beta: F64

    @property
    def mean(self) -> F64:
        """Posterior mean ``alpha / (alpha + beta)`` per offer."""
        result: F64 = self.alpha / (self.alpha + self.beta)
        return result


def posterior(
    offer_ids: Sequence[str],
    stats: Mapping[str, OfferStats],
    now_ms: int,
    cfg: ExplorationConfig,
    *,
    index: Mapping[str, int] | None = None,
) -> Posterior:
    """``Beta(prior_alpha + successes, prior_beta + failures)`` of each of ``offer_ids`` (e.g.
    a catalogue snapshot's ``offer_ids``), counts decayed to ``now_ms``; offers without stats
    get the prior. ``index``: offer id -> position in ``offer_ids`` (a snapshot's
    ``offer_index``; built here if not given). Costs O(N) numpy plus O(offers with stats)
    Python: compute it when the stats are refreshed, not per batch."""
    alpha = np.full(len(offer_ids), cfg.prior_alpha, dtype=np.float64)
    beta = np.full(len(offer_ids), cfg.prior_beta, dtype=np.float64)
    if stats:
        position = index if index is not None else {o: i for i, o in enumerate(offer_ids)}
        for offer_id, counts in stats.items():
            i = position.get(offer_id)
            if i is not None:
                decayed = counts.at(now_ms, cfg.half_life_ms)
                alpha[i] += decayed.successes
                beta[i] += decayed.failures
    return Posterior(alpha, beta)


def thompson_draws(post: Posterior, rng: np.random.Generator) -> F64:
    """One acceptance rate per offer drawn from its posterior (N values in (0, 1))."""
    draws: F64 = rng.beta(post.alpha, post.beta)
    return draws


def exploration_scores(post: Posterior, rng: np.random.Generator, weight: float) -> F64:
    """The exploration part of each offer for one batch: ``weight * draw``, in ``[0, weight]``
    (see module doc). ``weight == 0``: zeros, no draw."""
    if weight == 0:
        return np.zeros(post.alpha.shape, dtype=np.float64)
    result: F64 = weight * thompson_draws(post, rng)
    return result


def batch_rng(seed: int | None, batch: int) -> np.random.Generator:
    """The random generator of batch number ``batch`` (>= 0): deterministic given ``(seed,
    batch)`` and independent across batches; ``seed=None``: fresh OS entropy each call."""
    if batch < 0:
        raise ValueError(f"batch must be >= 0, got {batch}")
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng(np.random.SeedSequence([seed, batch]))
