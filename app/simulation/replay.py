"""Replay a sample of events through the workers' own pipeline, twice, and compare.

:func:`simulate` drives the real :class:`~app.pipeline.processor.BatchProcessor` with the
in-memory store (:class:`~app.storage.memory_store.MemoryProfileStore`), in-memory offer
statistics and a :class:`~app.simulation.capture.CapturingPublisher`: nothing is read from or
written to Redis or Kafka. Both configurations see exactly the same events in the same
batches (docs/simulation.md):

- *Sample*: the events of ``users`` users drawn with ``seed`` (all users by default), in event
  time order (stable, so events of equal time keep their input order), all on one partition,
  cut into batches of at most ``batch_size`` events spanning at most ``batch_span_ms`` of
  event time (:func:`batches_of`): a live worker's batch holds what arrived within
  ``NBO_BATCH_WITHIN_S``, and a user's events in one batch are decided on once.
- *Clock*: event time. Each batch is processed at the time of its newest event, so caps,
  cooldowns, quiet hours, popularity and offer statistics behave as they would have live;
  cart timers due by then fire right after the batch (``fire_due_carts``).
- *Starting state*: empty (no profiles, no contacts, no offer statistics), plus the consent
  records given. The first ``warmup_ms`` of event time (default: a quarter of the sample's
  span) is replayed but not counted, so that profiles and contact histories have filled.
- *Acceptance rates*: ``rates`` if given, else from the offer feedback in the sample itself
  (:func:`feedback_of`, :func:`app.simulation.report.acceptance_rates`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from tqdm import tqdm

from app.core.catalog import Catalogue
from app.core.catalog_records import Item, Offer
from app.core.enums import EventType
from app.core.errors import EventRejected
from app.core.events import UserEvent, decode_event
from app.pipeline.config import PipelineConfig
from app.pipeline.processor import BatchProcessor
from app.pipeline.records import InboundRecord
from app.policy.consent import ConsentRecord
from app.simulation.capture import CapturingPublisher
from app.simulation.report import (
    Decision,
    Feedback,
    SimulationReport,
    acceptance_rates,
    changed_users,
    days_of,
    parse_decision,
    summarise,
)
from app.storage.memory_offer_stats import MemoryOfferStatsStore
from app.storage.memory_store import MemoryProfileStore

WARMUP_SHARE = 0.25
"""Default warm-up: this share of the sample's event-time span."""


BATCH_SPAN_MS = 60_000
"""Default event time one replayed batch may span: a minute."""


class SimulationError(ValueError):
    """A simulation that cannot run as asked (e.g. no events)."""


@dataclass(frozen=True)
class Sample:
    """The decoded, sampled, time-ordered events and their raw values."""

    events: list[tuple[UserEvent, bytes]]
    rejected: int
    users: int

    @property
    def start_ms(self) -> int:
        return self.events[0][0].ts_ms

    @property
    def end_ms(self) -> int:
        return self.events[-1][0].ts_ms


def sample_events(
    values: Iterable[bytes], users: int | None = None, seed: int = 0, max_bytes: int | None = None
) -> Sample:
    """Decode ``values`` (undecodable ones are counted, not replayed: the worker dead-letters
    them), keep the events of ``users`` users drawn with ``seed`` (all if ``None``), ordered
    by event time (stable)."""
    decoded: list[tuple[UserEvent, bytes]] = []
    rejected = 0
    for raw in values:
        try:
            event = decode_event(raw, max_bytes) if max_bytes else decode_event(raw)
        except EventRejected:
            rejected += 1
            continue
        decoded.append((event, raw))
    ids = sorted({e.user_id for e, _ in decoded})
    if users is not None and users < len(ids):
        if users < 1:
            raise SimulationError("--users must be at least 1")
        chosen = set(random.Random(seed).sample(ids, users))
        decoded = [(e, raw) for e, raw in decoded if e.user_id in chosen]
        ids = sorted(chosen)
    decoded.sort(key=lambda pair: pair[0].ts_ms)
    return Sample(decoded, rejected, len(ids))


def batches_of(
    events: Sequence[tuple[UserEvent, bytes]], size: int, span_ms: int
) -> list[list[tuple[UserEvent, bytes]]]:
    """``events`` (time-ordered) cut into batches of at most ``size`` events, each ending
    before an event dated more than ``span_ms`` after the batch's first."""
    batches: list[list[tuple[UserEvent, bytes]]] = []
    current: list[tuple[UserEvent, bytes]] = []
    for pair in events:
        if current and (len(current) >= size or pair[0].ts_ms - current[0][0].ts_ms > span_ms):
            batches.append(current)
            current = []
        current.append(pair)
    if current:
        batches.append(current)
    return batches


def feedback_of(events: Iterable[UserEvent]) -> dict[str, Feedback]:
    """Impressions and acceptances per offer in ``events`` (``offer_impression``,
    ``offer_accepted``)."""
    shown: dict[str, int] = {}
    accepted: dict[str, int] = {}
    for e in events:
        if e.offer_id is None:
            continue
        if e.type == EventType.OFFER_IMPRESSION:
            shown[e.offer_id] = shown.get(e.offer_id, 0) + 1
        elif e.type == EventType.OFFER_ACCEPTED:
            accepted[e.offer_id] = accepted.get(e.offer_id, 0) + 1
    return {o: Feedback(shown.get(o, 0), accepted.get(o, 0)) for o in shown.keys() | accepted}


def catalogue_of(items: Sequence[Item], offers: Sequence[Offer], dim: int) -> Catalogue:
    """A fresh catalogue of ``items`` and ``offers`` (each run gets its own: the pipeline
    writes offers' popularity into it)."""
    catalogue = Catalogue(dim)
    for item in items:
        catalogue.upsert_item(item)
    for offer in offers:
        catalogue.upsert_offer(offer)
    return catalogue


def seeded(config: PipelineConfig, seed: int) -> PipelineConfig:
    """``config`` with its exploration draws seeded by ``seed`` unless already seeded."""
    if config.exploration.weight == 0 or config.exploration.seed is not None:
        return config
    return dataclasses.replace(
        config, exploration=config.exploration.model_copy(update={"seed": seed})
    )


async def replay(
    batches: Sequence[Sequence[tuple[UserEvent, bytes]]],
    items: Sequence[Item],
    offers: Sequence[Offer],
    config: PipelineConfig,
    consent: Sequence[ConsentRecord] = (),
    bar: tqdm | None = None,  # type: ignore[type-arg]
) -> list[Decision]:
    """Every decision the pipeline makes on ``batches`` under ``config`` (module doc)."""
    store = MemoryProfileStore()
    for record in consent:
        store.set_consent(record)
    publisher = CapturingPublisher()
    clock = [batches[0][0][0].ts_ms if batches and batches[0] else 0]
    processor = BatchProcessor(
        store,
        publisher,
        catalogue_of(items, offers, config.profile.dim),
        config,
        lambda: clock[0],
        offer_stats=MemoryOfferStatsStore(config.exploration.half_life_ms),
    )
    processor.warm_up()
    topic, offset = config.events_topic, 0
    for batch in batches:
        clock[0] = max(clock[0], max(e.ts_ms for e, _ in batch))
        records = []
        for event, raw in batch:
            records.append(InboundRecord(topic, 0, offset, event.user_id.encode(), raw))
            offset += 1
        await processor.process(records)
        await processor.fire_due_carts([(topic, 0)])
        if bar is not None:
            bar.update(1)
    return [parse_decision(r.value or b"{}") for r in publisher.on(config.decisions_topic)]


def simulate(
    events: Iterable[bytes],
    items: Sequence[Item],
    offers: Sequence[Offer],
    current: PipelineConfig,
    candidate: PipelineConfig,
    *,
    users: int | None = None,
    seed: int = 0,
    warmup_ms: int | None = None,
    batch_size: int = 500,
    batch_span_ms: int = BATCH_SPAN_MS,
    consent: Sequence[ConsentRecord] = (),
    rates: Mapping[str, float] | None = None,
    examples: int = 5,
    progress: bool = False,
    labels: tuple[str, str] = ("current", "candidate"),
) -> SimulationReport:
    """Replay ``events`` (UserEvent JSON values, as on the events topic) under ``current``
    and under ``candidate`` and report both side by side (module doc).

    ``items``/``offers``: the catalogue; ``users``: sample this many users (``seed``);
    ``warmup_ms``: event time at the start replayed but not counted (default a quarter of the
    span); ``batch_size``: events per batch (the worker's ``NBO_BATCH_SIZE``, 500) and
    ``batch_span_ms`` the event time one batch may span (60 s);
    ``consent``: consent records in force at the start (without one, a user gets the policy's
    consent defaults: in_app and web only); ``rates``: acceptance rate per offer (default: from
    the sample's offer feedback); ``examples``: most changed users shown. Deterministic for
    ``seed`` (exploration draws are seeded with it unless the configuration seeds them).
    Raises :class:`SimulationError` without events.
    """
    if batch_size < 1 or batch_span_ms < 0:
        raise SimulationError("the batch size must be at least 1 and the span not negative")
    started = time.perf_counter()
    sample = sample_events(events, users, seed, current.max_event_bytes)
    if not sample.events:
        raise SimulationError("no events to replay (none decoded, or none of the sampled users)")
    span = sample.end_ms - sample.start_ms
    warmup = int(span * WARMUP_SHARE) if warmup_ms is None else max(warmup_ms, 0)
    counted_from = sample.start_ms + warmup
    if counted_from > sample.end_ms:
        raise SimulationError("the warm-up covers the whole sample: nothing would be counted")
    batches = batches_of(sample.events, batch_size, batch_span_ms)
    with tqdm(
        total=2 * len(batches), desc="simulating", unit="batch", disable=not progress, leave=False
    ) as bar:
        runs = [
            asyncio.run(replay(batches, items, offers, seeded(config, seed), consent, bar))
            for config in (current, candidate)
        ]
    counted = [[d for d in run if d.decided_at >= counted_from] for run in runs]
    counted_events = [e for e, _ in sample.events if e.ts_ms >= counted_from]
    # the users active in the counted period: an event, or a decision (a cart timer set in
    # the warm-up may fire after it)
    active = {e.user_id for e in counted_events} | {d.user_id for run in counted for d in run}
    n_users = len(active)
    days = days_of(sample.end_ms - counted_from)
    if rates is None:
        rates = acceptance_rates(feedback_of(e for e, _ in sample.events))
    notes = []
    if sample.rejected:
        notes.append(f"{sample.rejected} undecodable events skipped (a worker dead-letters them)")
    return SimulationReport(
        current=summarise(counted[0], n_users, days, rates),
        candidate=summarise(counted[1], n_users, days, rates),
        changes=changed_users(counted[0], counted[1], examples),
        events=len(sample.events),
        counted_events=len(counted_events),
        users=sample.users,
        batches=len(batches),
        warmup_ms=warmup,
        counted_from_ms=counted_from,
        counted_to_ms=sample.end_ms,
        days=days,
        seed=seed,
        current_label=labels[0],
        candidate_label=labels[1],
        seconds=time.perf_counter() - started,
        notes=notes,
    )
