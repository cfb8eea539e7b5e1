"""One batch of user events, end to end: decode, apply, rank, store, publish.

The order of effects makes the pipeline effectively-once with at-least-once consumption:

1. Undecodable records become dead letters (original key and bytes, reason in headers).
2. Each user's events are applied to the stored profile by the pure core, which skips
   events already applied (offset or event id), so a redelivered batch changes nothing.
   Events dated at or before the user's erasure marker are dropped (counted, not applied).
   The newly applied events also update the user's policy state (offer feedback, channel
   engagement, cart timers). A user who objected to profiling gets no profile update at all.
3. Changed users are ranked with one matrix product for the whole batch, plus, when a
   neighbour table is given and ``scoring.w_cooccurrence > 0``, the co-occurrence part of
   each user's recent items (the batch's item events in front of the stored newest ones,
   loaded with the user: no extra round trip); each ranking, and
   each ``decision_request``, goes through the contact policy (:mod:`app.pipeline.decisions`):
   consent, caps, cooldowns, quiet hours, channel choice. A message is published only when
   the policy sends something new; every decision, sent or not, gets an audit record.
4. All users' writes go to the store in one round trip, each atomic and compare-and-set on
   the user's version (profile, offers, policy state, decision log together); a user whose
   version moved (another worker wrote, the consent agent bumped it, or a user not in the
   cache that was assumed new) is redone with the state the failed write returned.
5. Only then are offer messages, decision records and dead letters published; the caller
   acknowledges the input after :meth:`BatchProcessor.process` returns. A crash before that
   redelivers the batch: its events are duplicates, and an offer message whose trigger is
   among them is published again from the stored copy with the same ``message_id``.

The rooms: :mod:`~app.pipeline.signals` (popularity, offer statistics, exploration),
:mod:`~app.pipeline.planning` (step 2 and each user's write), :mod:`~app.pipeline.ranking`
and :mod:`~app.pipeline.decisions` (step 3), :mod:`~app.pipeline.outbound` (the records of
step 5). Cart timers fire from :meth:`BatchProcessor.fire_due_carts`
(:mod:`~app.pipeline.carts`), polled by a worker timer; it shares a lock with
:meth:`BatchProcessor.process`, so the two never interleave.

:class:`~app.ports.StoreUnavailable` propagates: the caller retries the same batch later.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import numpy.typing as npt

from app.core.ann import IndexStats
from app.core.catalog import Catalogue
from app.core.cooccurrence.table import NeighbourTable
from app.core.enums import OFFER_EVENT_TYPES, Channel
from app.core.errors import EventRejected, TransientError
from app.core.events import UserEvent, decode_event
from app.core.messages import Trigger
from app.core.privacy import check_key
from app.core.pseudonym import pseudonymise
from app.core.ranked import ScoredOffer, offers_of
from app.core.scoring import ranking_changed, unit_rows
from app.core.timestamps import check_not_ahead
from app.pipeline.cache import UserCache
from app.pipeline.carts import CartTimers
from app.pipeline.config import PipelineConfig
from app.pipeline.decisions import DecisionMaker
from app.pipeline.isolation import process_isolating
from app.pipeline.outbound import Outbound
from app.pipeline.planning import (
    Holdout,
    Plan,
    Planner,
    UserEvents,
    after_erasure,
    stored_offers,
)
from app.pipeline.ranking import BatchRanking
from app.pipeline.records import InboundRecord
from app.pipeline.signals import BatchSignals, Exploration
from app.pipeline.stats import NO_CHANNEL, BatchStats
from app.policy.quiet_hours import tz_hint
from app.ports import OfferStatsStore, OutboundRecord, ProfileStore, Publisher, StoredUser

log = logging.getLogger(__name__)


class ConflictsPersist(TransientError):
    """Users kept failing compare-and-set; the batch is retried as a whole."""


class BatchProcessor:
    """Processes batches of raw user-event records through the core (see module doc)."""

    def __init__(
        self,
        store: ProfileStore,
        publisher: Publisher,
        catalogue: Catalogue,
        config: PipelineConfig,
        clock_ms: Callable[[], int],
        *,
        offer_stats: OfferStatsStore | None = None,
        neighbours: NeighbourTable | None = None,
    ) -> None:
        """``neighbours``: the item-neighbour table kept next to ``catalogue`` (the
        co-occurrence part counts while it has items and ``scoring.w_cooccurrence > 0``)."""
        self._store = store
        self._publisher = publisher
        self._catalogue = catalogue
        self._cfg = config
        self._clock_ms = clock_ms
        self._cache = UserCache(config.cache_users)
        self._lock = asyncio.Lock()
        self._outbound = Outbound.of(config)
        self._topic_ids: dict[str, str] = {}  # topic -> Kafka topic id, see set_topic_id
        self._signals = BatchSignals(catalogue, config, offer_stats, self._topic_ids)
        self._ranking = BatchRanking(catalogue, config, neighbours)
        self._decider = DecisionMaker(catalogue, config)
        holdout = Holdout(config.holdout_share, config.holdout_salt)
        self._planner = Planner(
            catalogue, config, self._decider, self._outbound, holdout, self._topic_ids
        )
        self._carts = CartTimers(
            store=store, publisher=publisher, cache=self._cache, lock=self._lock,
            catalogue=catalogue, config=config, clock_ms=clock_ms, decider=self._decider,
            ranking=self._ranking, signals=self._signals, outbound=self._outbound,
            holdout=holdout,
        )  # fmt: skip
        self._exploration: Exploration | None = None

    @property
    def ann_stats(self) -> IndexStats | None:
        """Counters of the approximate candidate index (``None`` when it is off)."""
        return self._ranking.ann_stats

    def warm_up(self) -> None:
        """Build the catalogue's arrays and, for a large catalogue, the candidate index now
        (call once the catalogue is loaded), so the first batch does not wait for them."""
        self._ranking.warm_up()

    def topic_id(self, topic: str) -> str:
        """The Kafka topic id recorded for ``topic`` ("" if none)."""
        return self._topic_ids.get(topic, "")

    def set_topic_id(self, topic: str, topic_id: str) -> None:
        """Record the Kafka topic id of ``topic`` (learned at start and at every rebalance):
        stored offsets of another id are then void, see :mod:`app.core.profile`."""
        self._topic_ids[topic] = topic_id

    def forget_cached_users(self) -> None:
        """Drop the in-memory user cache (call on every rebalance)."""
        self._cache.clear()

    def forget_user(self, user_id: str) -> None:
        """Drop one user from the in-memory cache (after an erase). Correctness does not
        depend on it: a write decided against state read before the erasure fails its
        compare-and-set on the erasure marker, whichever worker holds the state."""
        self._cache.evict(user_id)

    async def process(self, records: Sequence[InboundRecord]) -> BatchStats:
        """Process ``records`` (in partition order); returns when all effects are durable."""
        async with self._lock:
            return await self._process(records)

    async def process_isolating(self, records: Sequence[InboundRecord]) -> BatchStats:
        """:meth:`process`, but a record that makes it fail for good is isolated and
        dead-lettered instead of failing the batch (:mod:`app.pipeline.isolation`); a
        transient failure still raises."""
        return await process_isolating(
            self.process, records, self._publisher, self._outbound, self._clock_ms
        )

    async def fire_due_carts(self, partitions: Iterable[tuple[str, int]]) -> int:
        """Fire the cart timers due now in the indexes of ``partitions`` (topic, partition),
        the ones this worker owns (:mod:`app.pipeline.carts`). Returns the decisions made."""
        return await self._carts.fire_due(partitions)

    async def _process(self, records: Sequence[InboundRecord]) -> BatchStats:
        now = self._clock_ms()
        stats = BatchStats(received=len(records))
        clock = time.perf_counter()
        outbound: list[OutboundRecord] = []
        by_user: dict[str, UserEvents] = {}
        signals = self._signals
        for record in records:
            try:
                event = decode_event(record.value, self._cfg.max_event_bytes)
                check_key(record.key, event.user_id)  # another key: another partition's user
                check_not_ahead(event.ts_ms, now, self._cfg.max_ahead_ms)
            except EventRejected as exc:
                outbound.append(
                    self._outbound.dead_letter(record, exc.reason_class, exc.message, now)
                )
                stats.reasons[exc.reason_class] = stats.reasons.get(exc.reason_class, 0) + 1
                continue
            by_user.setdefault(event.user_id, []).append((record, event))
        signals.refresh_popularity(now)
        await signals.record_feedback(e for events in by_user.values() for e in events)
        await signals.refresh_offer_stats(now)
        first = records[0] if records else None
        batch_key = f"{first.topic}:{first.partition}:{first.offset}" if first else ""
        self._exploration = signals.draw_exploration(now, batch_key)

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

    async def _round(
        self,
        user_ids: list[str],
        known: dict[str, StoredUser],
        by_user: dict[str, UserEvents],
        now: int,
        stats: BatchStats,
        outbound: list[OutboundRecord],
    ) -> tuple[list[str], dict[str, StoredUser]]:
        """One attempt for ``user_ids``; returns the users to redo with their stored state."""
        clock = time.perf_counter()
        states = await self._states(user_ids, known)
        clock = stats.timed("load", clock)
        plans: list[Plan] = []
        ready: list[tuple[StoredUser, UserEvents]] = []
        for user_id in user_ids:
            state = states[user_id]
            events = after_erasure(by_user[user_id], state.erased_at_ms)
            if len(events) < len(by_user[user_id]):
                # dated at or before the user's erasure: never applied, never dead-lettered
                # (a dead letter would copy the erased person's data to another topic)
                stats.before_erasure += len(by_user[user_id]) - len(events)
                by_user[user_id] = events
            if events:
                ready.append((state, events))
        for (state, events), planned in zip(
            ready, self._planner.plan_batch(ready, now), strict=True
        ):
            if not isinstance(planned, Exception):
                plans.append(planned)
                continue
            # bad data for one user must not stop the stream: that user's events are dead
            first = events[0][0]
            subject = pseudonymise(state.user_id, self._cfg.pseudonym_secret)  # logs: no raw id
            log.error(
                "dead-lettering the events of user %r",
                subject,
                exc_info=planned,
                extra={"topic": first.topic, "partition": first.partition,
                       "offset": first.offset, "user_id": subject},
            )  # fmt: skip
            for record, _ in events:
                outbound.append(
                    self._outbound.dead_letter(record, type(planned).__name__, str(planned), now)
                )
        clock = stats.timed("apply", clock)
        self._rank(plans, now)
        clock = stats.timed("rank", clock)

        writes = [w for w in (self._planner.write(p) for p in plans) if w is not None]
        outcome = await self._store.commit(writes)
        stats.timed("commit", clock)
        conflicts = outcome.conflicts
        for user_id in conflicts:
            self._cache.evict(user_id)
        stats.conflicts += len(conflicts)

        for plan in plans:
            if plan.user_id in conflicts:
                continue
            state = plan.state
            self._cache.put(
                StoredUser(
                    user_id=plan.user_id,
                    profile=plan.result.profile if plan.profiling else None,
                    version=outcome.versions.get(plan.user_id, state.version),
                    offers_json=plan.offers_json or state.offers_json,
                    purchased=frozenset(plan.purchased),
                    policy=plan.policy,
                    consent=state.consent,
                    recent=plan.recent,
                    consent_tag=state.consent_tag,
                    erased_at_ms=state.erased_at_ms,
                )
            )
            _count(stats, plan)
            for event in plan.fresh:  # applied now: a redelivery or a duplicate never counts
                self._signals.observe(event)
            outbound.extend(plan.messages)
            outbound.extend(self._outbound.decision(plan.user_id, d.record) for d in plan.decisions)
        replayed = [p for p in plans if p.replayed and p.user_id not in conflicts]
        if replayed:  # rare: what a redelivered batch sent may not have gone out
            republished = await self._stored_messages(replayed)
            stats.republished += len(republished)
            outbound.extend(republished)
            outbound.extend(await self._stored_decisions(replayed))
        return [u for u in user_ids if u in conflicts], dict(conflicts)

    async def _stored_messages(self, plans: list[Plan]) -> list[OutboundRecord]:
        """Every stored message triggered by the events of ``plans``' batches, in the order
        sent, addressed as published (a crash may have come between the commit and the
        publish). State written before the sent list existed has only the last message."""
        out: list[OutboundRecord] = []
        for plan in plans:
            batch_ids = {e.event_id for _, e in plan.events}
            stored = await self._store.sent_messages(plan.user_id)
            if not stored and plan.state.offers_json is not None:
                stored = [plan.state.offers_json]
            for raw in stored:
                if stored_offers(raw)[1] in batch_ids:
                    out.append(self._outbound.republish(plan.user_id, raw))
        return out

    async def _stored_decisions(self, plans: list[Plan]) -> list[OutboundRecord]:
        """The stored decision records triggered by the events of ``plans``' batches, to
        publish again (a crash may have come between the commit and the publish)."""
        out: list[OutboundRecord] = []
        for plan in plans:
            batch_ids = {e.event_id for _, e in plan.events}
            for raw in reversed(await self._store.decisions(plan.user_id)):  # oldest first
                if json.loads(raw).get("trigger", {}).get("event_id") in batch_ids:
                    out.append(self._outbound.decision(plan.user_id, raw))
        return out

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

    def _rank(self, plans: list[Plan], now: int) -> None:
        """Rank the changed users of the batch together and decide for each."""
        to_rank = [p for p in plans if p.profiling and p.result.changed]  # a replay: nothing
        if not to_rank:
            return
        dim = self._catalogue.dim
        vectors = np.stack([p.ranking_vector(dim) for p in to_rank])
        units = unit_rows(vectors)  # the reasons' user vectors, as scoring sees them
        candidates = self._ranking.rank(
            vectors,
            now,
            [p.exclude for p in to_rank],
            exploration=self._exploration,
            recent=[p.ranking_recent for p in to_rank],
            due=[p.ranking_due for p in to_rank],
        )
        for row, (plan, ranked) in enumerate(zip(to_rank, candidates, strict=True)):
            unit = units[row] if plan.personalised else None
            if plan.requests:
                for request in plan.requests:
                    self._decide(plan, ranked, unit, request, now, requested=request.channel)
            else:
                self._decide(plan, ranked, unit, plan.trigger, now)

    def _decide(
        self,
        plan: Plan,
        ranked: Sequence[ScoredOffer],
        unit: npt.NDArray[np.float32] | None,
        trigger: UserEvent,
        now: int,
        *,
        requested: Channel | None = None,
    ) -> None:
        """One decision for ``plan``: a ``decision_request`` (``requested`` channel) always
        decides; a ranking change only when the outcome differs from the stored message."""
        outcome = self._decider.decide(
            plan.user_id,
            unit,  # the unit taste vector (None in the control group)
            ranked,
            plan.policy,
            plan.state.consent,
            Trigger(event_id=trigger.event_id, type=trigger.type),
            now,
            requested_channel=requested,
            tz_hint=tz_hint(trigger),
            group=plan.group,
            because=self._ranking.because(plan.recent) if plan.personalised else None,
            unit=True,
        )
        if requested is None:
            if outcome.offers_json is not None:
                new_ids = outcome.decision.offer_ids
                if plan.state.offers_json and not ranking_changed(plan.old_offer_ids, new_ids):
                    return  # the stored message still holds
            else:
                top = [o.offer_id for o in offers_of(ranked)[: self._cfg.scoring.k]]
                if plan.state.offers_json and not ranking_changed(plan.old_offer_ids, top):
                    return  # nothing new would have been said: no decision to log
        plan.decisions.append(outcome)
        plan.policy = outcome.state
        if outcome.offers_json is not None and outcome.stored_json is not None:
            plan.offers_json = outcome.stored_json
            plan.sent.append(outcome.stored_json)
            plan.messages.append(
                self._outbound.offer(plan.user_id, outcome.offers_json, outcome.channel)
            )


def _count(stats: BatchStats, plan: Plan) -> None:
    """Add what ``plan`` did to ``stats``."""
    stats.applied += plan.result.applied
    stats.duplicates += plan.result.duplicates
    stats.offsets_reset += plan.result.offsets_reset
    stats.no_vector += plan.result.no_vector
    stats.decisions += len(plan.decisions)
    for d in plan.decisions:
        if d.offers_json is None:
            stats.suppressed += 1
            reason = d.decision.reason or "other"
            stats.suppressed_by_reason[reason] = stats.suppressed_by_reason.get(reason, 0) + 1
            continue
        stats.published += 1
        channel = d.channel.value if d.channel is not None else NO_CHANNEL
        key = (plan.group, channel)
        stats.sent_by_group[key] = stats.sent_by_group.get(key, 0) + 1
        for offer_id in d.decision.offer_ids:
            stats.sent_by_offer[offer_id] = stats.sent_by_offer.get(offer_id, 0) + 1
    for event in plan.fresh:
        if event.type in OFFER_EVENT_TYPES:
            channel = event.channel.value if event.channel is not None else NO_CHANNEL
            fkey = (plan.group, event.type.value, channel)
            stats.feedback_by_group[fkey] = stats.feedback_by_group.get(fkey, 0) + 1
