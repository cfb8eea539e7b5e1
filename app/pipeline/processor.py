"""One batch of user events, end to end: decode, apply, rank, store, publish.

The order of effects makes the pipeline effectively-once with at-least-once consumption:

1. Undecodable records become dead letters (original key and bytes, reason in headers).
2. Each user's events are applied to the stored profile by the pure core, which skips
   events already applied (offset or event id), so a redelivered batch changes nothing.
3. Changed users are ranked with one matrix product for the whole batch.
4. All users' writes go to the store in one round trip, each atomic and compare-and-set on
   the user's version; a user whose version moved (another worker wrote, or a user not in the
   cache that was assumed new) is redone with the state the failed write returned.
5. Only then are offer messages and dead letters published; the caller acknowledges the
   input after :meth:`BatchProcessor.process` returns. A crash before that redelivers the
   batch: its events are duplicates, and an offer message whose trigger is among them is
   published again from the stored copy with the same ``message_id``.

:class:`~app.ports.StoreUnavailable` propagates: the caller retries the same batch later.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from app.core.catalog import Catalogue
from app.core.dead_letters import dead_letter_headers
from app.core.enums import EventType
from app.core.errors import EventRejected
from app.core.events import UserEvent, decode_event
from app.core.messages import build_next_best_offer, select_for_channel
from app.core.popularity import PopularityTracker
from app.core.profile import ApplyResult, PendingEvent, apply_events
from app.core.scoring import ranking_changed, score_batch, unit_user, with_reasons
from app.core.weights import event_weight
from app.pipeline.cache import UserCache
from app.pipeline.config import PipelineConfig
from app.pipeline.records import InboundRecord
from app.ports import OutboundRecord, ProfileStore, Publisher, StoredUser, UserWrite

log = logging.getLogger(__name__)

CHANNEL_HEADER = "nbo.channel"


class ConflictsPersist(RuntimeError):
    """Users kept failing compare-and-set; the batch is retried as a whole."""


@dataclass
class BatchStats:
    """What one batch did (counts of events unless named otherwise)."""

    received: int = 0
    applied: int = 0
    duplicates: int = 0
    no_vector: int = 0
    dead_lettered: int = 0
    published: int = 0
    republished: int = 0
    conflicts: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    phase_s: dict[str, float] = field(default_factory=dict)
    """Seconds spent per phase: decode, load, apply, rank, commit, publish."""

    def timed(self, phase: str, started: float) -> float:
        """Add the time since ``started`` (perf_counter) to ``phase``; returns now."""
        now = time.perf_counter()
        self.phase_s[phase] = self.phase_s.get(phase, 0.0) + now - started
        return now


@dataclass
class _Plan:
    user_id: str
    state: StoredUser
    events: list[tuple[InboundRecord, UserEvent]]
    result: ApplyResult
    old_offer_ids: list[str]
    stored_trigger: str | None
    exclude: set[str]
    offers_json: bytes | None = None
    message: OutboundRecord | None = None


def _stored_offers(offers_json: bytes | None) -> tuple[list[str], str | None]:
    """Offer ids and trigger event id of a stored NextBestOffer message."""
    if not offers_json:
        return [], None
    doc = json.loads(offers_json)
    return [o["offer_id"] for o in doc.get("offers", [])], doc.get("trigger", {}).get("event_id")


def _item_times(
    events: list[tuple[InboundRecord, UserEvent]], kind: EventType | None = None
) -> dict[str, int]:
    """Item id -> event time (ms) of the item events (of type ``kind``, if given)."""
    return {
        e.item_id: e.ts_ms
        for _, e in events
        if e.is_item_event and e.item_id is not None and (kind is None or e.type is kind)
    }


class BatchProcessor:
    """Processes batches of raw user-event records through the core (see module doc)."""

    def __init__(
        self,
        store: ProfileStore,
        publisher: Publisher,
        catalogue: Catalogue,
        config: PipelineConfig,
        clock_ms: Callable[[], int],
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._catalogue = catalogue
        self._cfg = config
        self._clock_ms = clock_ms
        self._cache = UserCache(config.cache_users)
        self._popularity = PopularityTracker(half_life_ms=config.popularity_half_life_ms)
        self._popularity_refreshed_ms = 0
        # rank more than K so that K remain after keeping only the chosen channel's offers
        k = config.scoring.k * config.candidate_factor
        self._candidates = config.scoring.model_copy(update={"k": min(k, 1000)})

    def forget_cached_users(self) -> None:
        """Drop the in-memory user cache (call on every rebalance)."""
        self._cache.clear()

    async def process(self, records: Sequence[InboundRecord]) -> BatchStats:
        """Process ``records`` (in partition order); returns when all effects are durable."""
        now = self._clock_ms()
        stats = BatchStats(received=len(records))
        clock = time.perf_counter()
        outbound: list[OutboundRecord] = []
        by_user: dict[str, list[tuple[InboundRecord, UserEvent]]] = {}
        for record in records:
            try:
                event = decode_event(record.value, self._cfg.max_event_bytes)
            except EventRejected as exc:
                outbound.append(self._dead_letter(record, exc.reason_class, exc.message, now))
                stats.reasons[exc.reason_class] = stats.reasons.get(exc.reason_class, 0) + 1
                continue
            by_user.setdefault(event.user_id, []).append((record, event))
            if event.item_id is not None and event.is_item_event:
                tags = self._catalogue.item_tags(event.item_id) or event.tags
                weight = event_weight(event, self._cfg.weights)
                self._popularity.observe(event.item_id, tags, weight, event.ts_ms)
        self._refresh_popularity(now)

        stats.timed("decode", clock)
        pending = list(by_user)
        known: dict[str, StoredUser] = {}
        for _ in range(self._cfg.max_conflict_rounds):
            if not pending:
                break
            pending, known = await self._round(pending, known, by_user, now, stats, outbound)
        if pending:
            raise ConflictsPersist(f"{len(pending)} users kept conflicting, e.g. {pending[0]!r}")

        stats.dead_lettered = sum(1 for r in outbound if r.topic == self._cfg.dead_letter_topic)
        if outbound:
            clock = time.perf_counter()
            await self._publisher.publish(outbound)
            stats.timed("publish", clock)
        return stats

    def _refresh_popularity(self, now: int) -> None:
        """Push the offers' popularity prior into the catalogue, at most every refresh period.

        Each worker counts the events of its own partitions: a sample of all users.
        """
        if now - self._popularity_refreshed_ms < self._cfg.popularity_refresh_ms:
            return
        self._popularity_refreshed_ms = now
        snap = self._catalogue.snapshot()
        offers = {
            o.offer_id: (tuple(o.item_ids), snap.offer_tags[i]) for i, o in enumerate(snap.offers)
        }
        for offer_id, popularity in self._popularity.offer_popularity(offers).items():
            self._catalogue.set_popularity(offer_id, popularity)

    async def _round(
        self,
        user_ids: list[str],
        known: dict[str, StoredUser],
        by_user: dict[str, list[tuple[InboundRecord, UserEvent]]],
        now: int,
        stats: BatchStats,
        outbound: list[OutboundRecord],
    ) -> tuple[list[str], dict[str, StoredUser]]:
        """One attempt for ``user_ids``; returns the users to redo with their stored state."""
        clock = time.perf_counter()
        states = await self._states(user_ids, known)
        clock = stats.timed("load", clock)
        plans: list[_Plan] = []
        for user_id in user_ids:
            try:
                plans.append(self._plan(states[user_id], by_user[user_id], now))
            except Exception as exc:  # bad data for one user must not stop the stream
                first = by_user[user_id][0][0]
                log.exception(
                    "dead-lettering the events of user %r",
                    user_id,
                    extra={"topic": first.topic, "partition": first.partition,
                           "offset": first.offset, "user_id": user_id},
                )  # fmt: skip
                for record, _ in by_user[user_id]:
                    outbound.append(self._dead_letter(record, type(exc).__name__, str(exc), now))
        clock = stats.timed("apply", clock)
        self._rank(plans, now)
        clock = stats.timed("rank", clock)

        writes = [
            UserWrite(
                user_id=p.user_id,
                expected_version=p.state.version,
                profile=p.result.profile,
                offers_json=p.offers_json,
                seen=_item_times(p.events),
                purchased=_item_times(p.events, EventType.PURCHASE),
            )
            for p in plans
            if p.result.changed or p.offers_json is not None
        ]
        outcome = await self._store.commit(writes)
        stats.timed("commit", clock)
        conflicts = outcome.conflicts
        for user_id in conflicts:
            self._cache.evict(user_id)
        stats.conflicts += len(conflicts)

        for plan in plans:
            if plan.user_id in conflicts:
                continue
            version = outcome.versions.get(plan.user_id, plan.state.version)
            self._cache.put(
                StoredUser(
                    user_id=plan.user_id,
                    profile=plan.result.profile,
                    version=version,
                    offers_json=plan.offers_json or plan.state.offers_json,
                    purchased=frozenset(plan.exclude),
                )
            )
            stats.applied += plan.result.applied
            stats.duplicates += plan.result.duplicates
            stats.no_vector += plan.result.no_vector
            if plan.message is not None:
                outbound.append(plan.message)
                if plan.offers_json is None:
                    stats.republished += 1
                else:
                    stats.published += 1
        return [u for u in user_ids if u in conflicts], dict(conflicts)

    async def _states(
        self, user_ids: list[str], known: dict[str, StoredUser]
    ) -> dict[str, StoredUser]:
        """State per user: as returned by a failed write, else cached, else (by default)
        assumed new — a wrong guess costs one failed write that returns the real state."""
        states: dict[str, StoredUser] = {}
        missing: list[str] = []
        for user_id in user_ids:
            state = known.get(user_id) or self._cache.get(user_id)
            if state is not None:
                states[user_id] = state
            elif self._cfg.assume_unknown_users_new:
                states[user_id] = StoredUser(user_id, None)
            else:
                missing.append(user_id)
        if missing:
            states.update(await self._store.load(missing))
        return states

    def _plan(
        self, state: StoredUser, events: list[tuple[InboundRecord, UserEvent]], now: int
    ) -> _Plan:
        catalogue = self._catalogue
        pending = [
            PendingEvent(
                event_id=event.event_id,
                partition=record.partition,
                offset=record.offset,
                ts_ms=event.ts_ms,
                weight=event_weight(event, self._cfg.weights),
                vector=catalogue.event_vector(event),
            )
            for record, event in events
        ]
        result = apply_events(state.profile, pending, self._cfg.profile, now_ms=now)
        old_ids, stored_trigger = _stored_offers(state.offers_json)
        exclude = set(state.purchased) | _item_times(events, EventType.PURCHASE).keys()
        plan = _Plan(state.user_id, state, events, result, old_ids, stored_trigger, exclude)
        if not result.changed and state.offers_json is not None:
            batch_ids = {e.event_id for _, e in events}
            if stored_trigger in batch_ids:  # redelivered after a crash: publish again
                plan.message = self._offer_record(state.user_id, state.offers_json)
        return plan

    def _rank(self, plans: list[_Plan], now: int) -> None:
        to_rank = [p for p in plans if p.result.changed or p.state.offers_json is None]
        if not to_rank:
            return
        vecs = np.stack([p.result.profile.vec for p in to_rank])
        exclude = [p.exclude for p in to_rank]
        candidates = score_batch(
            vecs, now, self._catalogue, self._candidates, exclude, reasons=False
        )
        k = self._cfg.scoring.k
        for plan, ranked in zip(to_rank, candidates, strict=True):
            selected = select_for_channel(ranked, k)
            if selected is None:
                continue
            new_ids = [s.offer_id for s in selected[1]]
            if not ranking_changed(plan.old_offer_ids, new_ids) and plan.state.offers_json:
                continue
            explained = with_reasons(
                unit_user(plan.result.profile.vec),
                selected[1],
                self._catalogue.snapshot(),
                self._cfg.scoring,
            )
            message = build_next_best_offer(
                plan.user_id,
                plan.events[-1][1],
                explained,
                now,
                model_version=self._cfg.model_version,
                dim=self._catalogue.dim,
                ttl_ms=self._cfg.offer_ttl_ms,
                max_offers=k,
            )
            if message is None:
                continue
            plan.offers_json = message.to_json_bytes()
            plan.message = self._offer_record(plan.user_id, plan.offers_json, message.channel)

    def _offer_record(
        self, user_id: str, offers_json: bytes, channel: str | None = None
    ) -> OutboundRecord:
        if channel is None:
            channel = str(json.loads(offers_json).get("channel", ""))
        return OutboundRecord(
            topic=self._cfg.offers_topic,
            key=user_id.encode(),
            value=offers_json,
            headers=((CHANNEL_HEADER, channel.encode()),),
        )

    def _dead_letter(
        self, record: InboundRecord, reason_class: str, message: str, now: int
    ) -> OutboundRecord:
        headers = dead_letter_headers(
            reason_class, message, record.topic, record.partition, record.offset, now
        )
        return OutboundRecord(self._cfg.dead_letter_topic, record.key, record.value, headers)
