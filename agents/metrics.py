"""Prometheus metrics of one worker, in a registry of its own (served at ``GET /metrics``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from app.pipeline.stats import BatchStats

MAX_OFFER_LABELS = 2000
"""Offer ids that get a series of their own in ``nbo_offers_sent_by_offer``."""
OTHER_OFFERS = "_other"
"""The label of every offer id past :data:`MAX_OFFER_LABELS`."""


@dataclass
class WorkerMetrics:
    """Counters of events by outcome, offers published and batch latency (seconds)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.events_received = Counter("nbo_events_received", "Events consumed", registry=r)
        self.events_applied = Counter("nbo_events_applied", "Events applied", registry=r)
        self.events_deduplicated = Counter(
            "nbo_events_deduplicated", "Events skipped as already applied", registry=r
        )
        self.events_dead_lettered = Counter(
            "nbo_events_dead_lettered",
            "Events sent to the dead-letter topic",
            ["reason"],
            registry=r,
        )
        self.events_before_erasure = Counter(
            "nbo_events_before_erasure",
            "Events dropped as dated at or before their user's erasure",
            registry=r,
        )
        self.offsets_of_earlier_topic = Counter(
            "nbo_offsets_of_earlier_topic",
            "Users whose stored offsets belonged to an earlier incarnation of the events topic",
            registry=r,
        )
        self.topic_id_changes = Counter(
            "nbo_topic_id_changes",
            "Times the events topic's Kafka topic id was found changed (topic recreated)",
            registry=r,
        )
        self.events_without_vector = Counter(
            "nbo_events_without_vector", "Applied events with no item vector", registry=r
        )
        self.offers_published = Counter(
            "nbo_offers_published", "Next-best-offer messages published", registry=r
        )
        self.offers_republished = Counter(
            "nbo_offers_republished", "Offer messages published again after a replay", registry=r
        )
        self.decisions = Counter(
            "nbo_decisions", "Decisions made (sent or not) by outcome", ["outcome"], registry=r
        )
        self.cart_decisions = Counter(
            "nbo_cart_decisions", "Decisions made because a cart timer fired", registry=r
        )
        self.decisions_suppressed = Counter(
            "nbo_decisions_suppressed",
            "Decisions that sent nothing, by reason (objection, no_candidates, ineligible, "
            "consent, cooldown, cap, quiet_hours, below_match)",
            ["reason"],
            registry=r,
        )
        self.offers_sent_by_group = Counter(
            "nbo_offers_sent_by_group",
            "Offer messages sent per holdout group (personalised, control) and channel",
            ["group", "channel"],
            registry=r,
        )
        self.offer_feedback_by_group = Counter(
            "nbo_offer_feedback_by_group",
            "Offer feedback events per holdout group, type and channel (the event's own; "
            "unknown when it names none); acceptance rate of a group = offer_accepted / "
            "messages sent",
            ["group", "type", "channel"],
            registry=r,
        )
        self.offers_sent_by_offer = Counter(
            "nbo_offers_sent_by_offer",
            f"Offer messages sent that carried the offer (the first {MAX_OFFER_LABELS} offer "
            f"ids seen get a label of their own, later ones {OTHER_OFFERS!r})",
            ["offer"],
            registry=r,
        )
        self._offer_labels: set[str] = set()
        self.store_conflicts = Counter(
            "nbo_store_conflicts", "Per-user compare-and-set conflicts", registry=r
        )
        self.batch_retries = Counter(
            "nbo_batch_retries", "Batches retried (store or broker unavailable)", registry=r
        )
        self.store_round_trips = Gauge(
            "nbo_store_round_trips", "Redis round trips (pipelines) sent so far", registry=r
        )
        self.event_deliveries = Counter(
            "nbo_event_deliveries",
            "Items the user-events agent received, by shape: a whole fetch (the Kafka "
            "consumer's) or a single record (any other transport)",
            ["shape"],
            registry=r,
        )
        self.batch_seconds = Histogram(
            "nbo_batch_seconds",
            "Time to process one batch, seconds",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.phase_seconds = Counter(
            "nbo_batch_phase_seconds",
            "Time spent per batch phase (decode, load, apply, rank, commit, publish), seconds",
            ["phase"],
            registry=r,
        )
        self.first_batch_started = Gauge(
            "nbo_first_batch_started_seconds",
            "Unix time the first batch of events started processing (0: none yet)",
            registry=r,
        )
        self.last_batch_done = Gauge(
            "nbo_last_batch_done_seconds",
            "Unix time the latest batch of events was processed (0: none yet)",
            registry=r,
        )
        self._first_batch_seen = False
        self.catalogue_offers = Gauge("nbo_catalogue_offers", "Offers in the catalogue", registry=r)
        self.catalogue_items = Gauge("nbo_catalogue_items", "Items in the catalogue", registry=r)
        self.neighbour_items = Gauge(
            "nbo_neighbour_items", "Items with co-occurrence neighbours", registry=r
        )
        self.catalogue_rejected = Counter(
            "nbo_catalogue_rejected", "Catalogue records that failed to decode", registry=r
        )

    def _offer_label(self, offer_id: str) -> str:
        """``offer_id``, or :data:`OTHER_OFFERS` once :data:`MAX_OFFER_LABELS` ids have a
        label (the series a worker exports stay bounded)."""
        if offer_id in self._offer_labels:
            return offer_id
        if len(self._offer_labels) < MAX_OFFER_LABELS:
            self._offer_labels.add(offer_id)
            return offer_id
        return OTHER_OFFERS

    def record_batch(self, stats: BatchStats, seconds: float) -> None:
        """Add one processed batch."""
        self.events_received.inc(stats.received)
        self.events_applied.inc(stats.applied)
        self.events_deduplicated.inc(stats.duplicates)
        self.events_without_vector.inc(stats.no_vector)
        self.events_before_erasure.inc(stats.before_erasure)
        self.offsets_of_earlier_topic.inc(stats.offsets_reset)
        for reason, count in stats.reasons.items():
            self.events_dead_lettered.labels(reason=reason).inc(count)
        other = stats.dead_lettered - sum(stats.reasons.values())
        if other > 0:
            self.events_dead_lettered.labels(reason="ProcessingError").inc(other)
        self.offers_published.inc(stats.published)
        self.offers_republished.inc(stats.republished)
        self.store_conflicts.inc(stats.conflicts)
        self.decisions.labels(outcome="sent").inc(stats.decisions - stats.suppressed)
        self.decisions.labels(outcome="suppressed").inc(stats.suppressed)
        for reason, count in stats.suppressed_by_reason.items():
            self.decisions_suppressed.labels(reason=reason).inc(count)
        for (group, channel), sent in stats.sent_by_group.items():
            self.offers_sent_by_group.labels(group=group, channel=channel).inc(sent)
        for (group, kind, channel), count in stats.feedback_by_group.items():
            self.offer_feedback_by_group.labels(group=group, type=kind, channel=channel).inc(count)
        for offer_id, count in stats.sent_by_offer.items():
            self.offers_sent_by_offer.labels(offer=self._offer_label(offer_id)).inc(count)
        self.batch_seconds.observe(seconds)
        done = time.time()
        if not self._first_batch_seen:
            self._first_batch_seen = True
            self.first_batch_started.set(done - seconds)
        self.last_batch_done.set(done)
        for phase, spent in stats.phase_s.items():
            self.phase_seconds.labels(phase=phase).inc(spent)
