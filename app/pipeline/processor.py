"""One batch of user events, end to end: decode, apply, rank, store, publish.

The order of effects makes the pipeline effectively-once with at-least-once consumption:

1. Undecodable records become dead letters (original key and bytes, reason in headers).
2. Each user's events are applied to the stored profile by the pure core, which skips
   events already applied (offset or event id), so a redelivered batch changes nothing.
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

Cart timers fire from :meth:`BatchProcessor.fire_due_carts`, polled by a worker timer; it
shares a lock with :meth:`BatchProcessor.process`, so the two never interleave.

:class:`~app.ports.StoreUnavailable` propagates: the caller retries the same batch later.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pydantic_core

from app.core.ann import CandidateIndex, IndexStats
from app.core.catalog import Catalogue
from app.core.dead_letters import dead_letter_headers
from app.core.enums import OFFER_EVENT_TYPES, Channel, EventType
from app.core.errors import EventRejected
from app.core.events import UserEvent, decode_event
from app.core.exploration import (
    OfferStats,
    Posterior,
    batch_rng,
    exploration_scores,
    partition_updates,
    posterior,
)
from app.core.holdout import CONTROL, PERSONALISED, group_of
from app.core.messages import CART_ABANDONMENT, Trigger
from app.core.neighbours import NeighbourTable
from app.core.popularity import OfferSources, PopularityTracker
from app.core.profile import ApplyResult, PendingEvent, Profile, apply_events
from app.core.pseudonym import pseudonymise
from app.core.reasons import Because
from app.core.scoring import ScoredOffer, ranking_changed, score_batch
from app.core.weights import event_weight
from app.pipeline.cache import UserCache
from app.pipeline.config import PipelineConfig
from app.pipeline.decisions import DecisionMaker, Outcome
from app.pipeline.records import InboundRecord
from app.policy.consent import profiling_allowed
from app.policy.quiet_hours import tz_hint
from app.policy.state import UserPolicyState
from app.policy.triggers import apply_to_state, due_timers, fire, next_due, timer_id
from app.ports import (
    CartDue,
    OfferStatsStore,
    OutboundRecord,
    ProfileStore,
    Publisher,
    StoredUser,
    UserWrite,
)

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
    decisions: int = 0
    suppressed: int = 0
    """Decisions that sent nothing."""
    sent_by_group: dict[str, int] = field(default_factory=dict)
    """Messages sent per holdout group."""
    feedback_by_group: dict[tuple[str, str], int] = field(default_factory=dict)
    """Newly applied ``offer_*`` events per (holdout group, event type)."""
    reasons: dict[str, int] = field(default_factory=dict)
    phase_s: dict[str, float] = field(default_factory=dict)
    """Seconds spent per phase: decode, load, apply, rank, commit, publish."""

    def timed(self, phase: str, started: float) -> float:
        """Add the time since ``started`` (perf_counter) to ``phase``; returns now."""
        now = time.perf_counter()
        self.phase_s[phase] = self.phase_s.get(phase, 0.0) + now - started
        return now


class _Firing(NamedTuple):
    """A user with due cart timers: index entry (key id, partition), state, due timers."""

    key_id: str
    partition: int
    state: StoredUser
    due: list[tuple[str, int]]


@dataclass
class _Plan:
    user_id: str
    state: StoredUser
    events: list[tuple[InboundRecord, UserEvent]]
    result: ApplyResult
    old_offer_ids: list[str]
    stored_trigger: str | None
    exclude: set[str]
    policy: UserPolicyState
    profiling: bool = True
    group: str = PERSONALISED
    recent: tuple[str, ...] = ()
    """The user's recent item ids after this batch, newest first."""
    fresh: list[UserEvent] = field(default_factory=list)
    replayed: bool = False
    requests: list[UserEvent] = field(default_factory=list)
    offers_json: bytes | None = None
    messages: list[OutboundRecord] = field(default_factory=list)
    decisions: list[Outcome] = field(default_factory=list)

    @property
    def trigger(self) -> UserEvent:
        """The event a ranking change is attributed to: the batch's last event."""
        return self.events[-1][1]


def _stored_offers(offers_json: bytes | None) -> tuple[list[str], str | None]:
    """Offer ids and trigger event id of a stored NextBestOffer message."""
    if not offers_json:
        return [], None
    doc = pydantic_core.from_json(offers_json)
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


def _recent(
    events: list[tuple[InboundRecord, UserEvent]], stored: tuple[str, ...], n: int
) -> tuple[str, ...]:
    """The newest ``n`` distinct items: the batch's item events (newest first, as the ``seen``
    zset orders them) in front of the stored ones."""
    batch = sorted(_item_times(events).items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
    return tuple(dict.fromkeys([*(item for item, _ in batch), *stored]))[:n]


def _fresh(events: list[tuple[InboundRecord, UserEvent]], ids: frozenset[str]) -> list[UserEvent]:
    """The events whose ids were applied now, each once, in order."""
    out: dict[str, UserEvent] = {}
    for _, event in events:
        if event.event_id in ids and event.event_id not in out:
            out[event.event_id] = event
    return list(out.values())


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
        self._neighbours = neighbours
        self._offer_stats = offer_stats
        self._stats: dict[str, OfferStats] = {}
        self._stats_read_ms: int | None = None
        self._posterior: tuple[object, Posterior] | None = None
        self._exploration: npt.NDArray[np.float64] | None = None
        self._publisher = publisher
        self._catalogue = catalogue
        self._cfg = config
        self._clock_ms = clock_ms
        self._cache = UserCache(config.cache_users)
        self._popularity = PopularityTracker(half_life_ms=config.popularity_half_life_ms)
        self._popularity_refreshed_ms = 0
        self._popularity_sources: tuple[tuple[str, ...], OfferSources] | None = None
        self._decider = DecisionMaker(catalogue, config)
        self._ann = CandidateIndex(config.ann) if config.ann is not None else None
        self._lock = asyncio.Lock()
        # rank more than K so that K remain after the policy drops offers
        k = config.scoring.k * config.candidate_factor
        self._candidates = config.scoring.model_copy(update={"k": min(k, 1000)})

    def _cooccurrence_on(self) -> bool:
        """Whether rankings get the co-occurrence part now (weight set, neighbours known)."""
        table = self._neighbours
        return self._cfg.scoring.w_cooccurrence > 0 and table is not None and len(table) > 0

    def _because(self, plan: _Plan) -> Because | None:
        """What names the source of the user's co-occurrence reasons (``None``: off)."""
        if self._neighbours is None or not plan.recent or not self._cooccurrence_on():
            return None
        return self._neighbours.because(plan.recent, self._cfg.recent, self._catalogue)

    @property
    def ann_stats(self) -> IndexStats | None:
        """Counters of the approximate candidate index (``None`` when it is off)."""
        return self._ann.stats if self._ann is not None else None

    def warm_up(self) -> None:
        """Build the catalogue's arrays and, for a large catalogue, the candidate index now
        (call once the catalogue is loaded), so the first batch does not wait for them."""
        self._catalogue.snapshot()
        if self._ann is not None:
            self._ann.prepare(self._catalogue)

    def forget_cached_users(self) -> None:
        """Drop the in-memory user cache (call on every rebalance)."""
        self._cache.clear()

    async def process(self, records: Sequence[InboundRecord]) -> BatchStats:
        """Process ``records`` (in partition order); returns when all effects are durable."""
        async with self._lock:
            return await self._process(records)

    async def _process(self, records: Sequence[InboundRecord]) -> BatchStats:
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
        await self._record_offer_feedback(by_user)
        await self._refresh_offer_stats(now)
        first = records[0] if records else None
        batch_key = f"{first.topic}:{first.partition}:{first.offset}" if first else ""
        self._exploration = self._draw_exploration(now, batch_key)

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
        sources = self._popularity_sources
        if sources is None or sources[0] is not snap.offer_ids:  # the catalogue changed
            rows = [(tuple(o.item_ids), snap.offer_tags[i]) for i, o in enumerate(snap.offers)]
            sources = self._popularity_sources = (snap.offer_ids, OfferSources.of(rows))
        popularity = self._popularity.offer_popularity_array(sources[1])
        self._catalogue.set_popularities(snap.offer_ids, popularity)

    async def _record_offer_feedback(
        self, by_user: dict[str, list[tuple[InboundRecord, UserEvent]]]
    ) -> None:
        """Write the batch's offer feedback to the offer stats, idempotently per partition
        (before the users' writes: a redelivered batch is then recognised by its offsets)."""
        if self._offer_stats is None:
            return
        by_topic: dict[str, dict[str, tuple[int, int, UserEvent]]] = {}
        for events in by_user.values():
            for record, event in events:
                if event.type in OFFER_EVENT_TYPES:  # one per event id within the batch
                    rows = by_topic.setdefault(record.topic, {})
                    rows.setdefault(event.event_id, (record.partition, record.offset, event))
        half_life = self._cfg.exploration.half_life_ms
        for topic, rows in by_topic.items():
            updates = partition_updates(topic, rows.values(), half_life)
            outcome = await self._offer_stats.apply(updates)
            overlaps = outcome.overlaps_of(topic)
            if overlaps:  # part of a partition's records were written before: the rest
                redo = partition_updates(topic, rows.values(), half_life, after=overlaps)
                await self._offer_stats.apply([u for u in redo if u.partition in overlaps])

    async def _refresh_offer_stats(self, now: int) -> None:
        """Reread every partition's offer stats, at most every refresh period."""
        store, cfg = self._offer_stats, self._cfg
        if store is None or cfg.exploration.weight == 0:
            return
        last = self._stats_read_ms
        if last is not None and now - last < cfg.offer_stats_refresh_ms:
            return
        self._stats = await store.read_all(cfg.events_topic, range(cfg.events_partitions))
        self._stats_read_ms = now
        self._posterior = None

    def _draw_exploration(self, now: int, key: str) -> npt.NDArray[np.float64] | None:
        """This batch's exploration part per offer (one Thompson draw per offer), or None.

        The draws are seeded by the configured seed and ``key`` (the batch's first record
        position), so with a seed a redelivered batch draws the same again."""
        cfg = self._cfg.exploration
        if cfg.weight == 0:
            return None
        snap = self._catalogue.snapshot()
        # a popularity refresh replaces the snapshot but keeps its offer_ids tuple
        if self._posterior is None or self._posterior[0] is not snap.offer_ids:
            post = posterior(snap.offer_ids, self._stats, now, cfg, index=snap.offer_index)
            self._posterior = (snap.offer_ids, post)
        rng = batch_rng(cfg.seed, zlib.crc32(key.encode()))
        return exploration_scores(self._posterior[1], rng, cfg.weight)

    def _group(self, user_id: str) -> str:
        share = self._cfg.holdout_share
        return group_of(user_id, share, self._cfg.holdout_salt) if share > 0 else PERSONALISED

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

        writes = [w for w in (self._write(p) for p in plans) if w is not None]
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
                    purchased=frozenset(plan.exclude),
                    policy=plan.policy,
                    consent=state.consent,
                    recent=plan.recent,
                )
            )
            stats.applied += plan.result.applied
            stats.duplicates += plan.result.duplicates
            stats.no_vector += plan.result.no_vector
            stats.decisions += len(plan.decisions)
            stats.suppressed += sum(1 for d in plan.decisions if d.offers_json is None)
            sent = sum(1 for d in plan.decisions if d.offers_json is not None)
            stats.published += sent
            if sent:
                stats.sent_by_group[plan.group] = stats.sent_by_group.get(plan.group, 0) + sent
            for event in plan.fresh:
                if event.type in OFFER_EVENT_TYPES:
                    key = (plan.group, event.type.value)
                    stats.feedback_by_group[key] = stats.feedback_by_group.get(key, 0) + 1
            if plan.messages and not plan.decisions:
                stats.republished += len(plan.messages)
            outbound.extend(plan.messages)
            outbound.extend(self._decision_record(plan.user_id, d.record) for d in plan.decisions)
        replayed = [p for p in plans if p.replayed and p.user_id not in conflicts]
        if replayed:  # rare: the decisions of a redelivered batch may not have gone out
            outbound.extend(await self._stored_decisions(replayed))
        return [u for u in user_ids if u in conflicts], dict(conflicts)

    async def _stored_decisions(self, plans: list[_Plan]) -> list[OutboundRecord]:
        """The stored decision records triggered by the events of ``plans``' batches, to
        publish again (a crash may have come between the commit and the publish)."""
        out: list[OutboundRecord] = []
        for plan in plans:
            batch_ids = {e.event_id for _, e in plan.events}
            for raw in reversed(await self._store.decisions(plan.user_id)):  # oldest first
                if json.loads(raw).get("trigger", {}).get("event_id") in batch_ids:
                    out.append(self._decision_record(plan.user_id, raw))
        return out

    def _write(self, plan: _Plan) -> UserWrite | None:
        """The user's atomic write, ``None`` when nothing changed."""
        policy_changed = plan.policy != plan.state.policy
        if not (plan.result.changed or plan.offers_json or policy_changed or plan.decisions):
            return None
        due = next_due(plan.policy)
        cart_due = None
        if due is not None and plan.policy.carts != plan.state.policy.carts:
            last = plan.events[-1][0]
            cart_due = CartDue(last.topic, last.partition, due)
        return UserWrite(
            user_id=plan.user_id,
            expected_version=plan.state.version,
            profile=plan.result.profile if plan.profiling else None,
            offers_json=plan.offers_json,
            seen=_item_times(plan.events) if plan.profiling else {},
            purchased=_item_times(plan.events, EventType.PURCHASE),
            policy_json=plan.policy.to_json() if policy_changed else None,
            decisions=[d.record for d in plan.decisions],
            cart_due=cart_due,
        )

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
        old_ids, stored_trigger = _stored_offers(state.offers_json)
        exclude = set(state.purchased) | _item_times(events, EventType.PURCHASE).keys()
        if not profiling_allowed(state.consent):
            # objection to profiling: nothing is applied; the batch gets one decision record
            unchanged = ApplyResult(state.profile or Profile.empty(catalogue.dim), 0, 0, 0, False)
            plan = _Plan(
                state.user_id, state, events, unchanged, old_ids, stored_trigger, exclude,
                state.policy, profiling=False, recent=state.recent,
            )  # fmt: skip
            outcome = self._decider.decide(
                state.user_id, None, [], state.policy, state.consent,
                Trigger(event_id=plan.trigger.event_id, type=plan.trigger.type), now,
            )  # fmt: skip
            plan.decisions.append(outcome)
            return plan
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
        fresh = _fresh(events, result.fresh_ids)
        policy = apply_to_state(
            state.policy,
            state.user_id,
            fresh,
            cart_delay_ms=self._cfg.cart_delay_ms,
            limits=self._cfg.policy.state,
        )
        recent = _recent(events, state.recent, self._cfg.recent.n_recent)
        plan = _Plan(
            state.user_id, state, events, result, old_ids, stored_trigger, exclude, policy,
            group=self._group(state.user_id), fresh=fresh, recent=recent,
        )  # fmt: skip
        by_channel = {e.channel: e for e in fresh if e.type is EventType.DECISION_REQUEST}
        plan.requests = list(by_channel.values())
        stored_offsets = state.profile.offsets if state.profile is not None else {}
        if not result.changed and any(
            r.offset <= stored_offsets.get(r.partition, -1) for r, _ in events
        ):  # redelivered (not a producer's duplicate at a new offset): see _round
            plan.replayed = True
            batch_ids = {e.event_id for _, e in events}
            if state.offers_json is not None and stored_trigger in batch_ids:
                # redelivered after a crash: publish again
                plan.messages.append(self._offer_record(state.user_id, state.offers_json))
        return plan

    def _rank(self, plans: list[_Plan], now: int) -> None:
        to_rank = [
            p
            for p in plans
            if p.profiling and p.result.changed  # a replay decides nothing anew
        ]
        if not to_rank:
            return
        # the control group gets the non-personalised ranking: a zero vector scores by
        # value, popularity and priority only
        dim = self._catalogue.dim
        vecs = np.stack(
            [p.result.profile.vec if p.group != CONTROL else _zeros(dim) for p in to_rank]
        )
        exclude = [p.exclude for p in to_rank]
        cooccurrence = None
        if self._neighbours is not None and self._cooccurrence_on():
            # the control group is not personalised: no recent items either
            recent = [p.recent if p.group != CONTROL else () for p in to_rank]
            snap = self._catalogue.snapshot()
            cooccurrence = self._neighbours.scores(recent, snap, self._cfg.recent)
        if cooccurrence is None and self._ann is not None:  # large catalogues: candidates
            candidates = self._ann.score_batch(
                vecs, now, self._catalogue, self._candidates, exclude, reasons=False,
                exploration=self._exploration,
            )  # fmt: skip
        else:
            candidates = score_batch(
                vecs, now, self._catalogue, self._candidates, exclude, reasons=False,
                exploration=self._exploration, cooccurrence=cooccurrence,
            )  # fmt: skip
        for plan, ranked in zip(to_rank, candidates, strict=True):
            if plan.requests:
                for request in plan.requests:
                    self._decide(plan, ranked, request, now, requested=request.channel)
            else:
                self._decide(plan, ranked, plan.trigger, now)

    def _decide(
        self,
        plan: _Plan,
        ranked: list[ScoredOffer],
        trigger: UserEvent,
        now: int,
        *,
        requested: Channel | None = None,
    ) -> None:
        """One decision for ``plan``: a ``decision_request`` (``requested`` channel) always
        decides; a ranking change only when the outcome differs from the stored message."""
        outcome = self._decider.decide(
            plan.user_id,
            plan.result.profile.vec if plan.group != CONTROL else None,
            ranked,
            plan.policy,
            plan.state.consent,
            Trigger(event_id=trigger.event_id, type=trigger.type),
            now,
            requested_channel=requested,
            tz_hint=tz_hint(trigger),
            group=plan.group,
            because=self._because(plan) if plan.group != CONTROL else None,
        )
        if requested is None:
            if outcome.offers_json is not None:
                new_ids = outcome.decision.offer_ids
                if plan.state.offers_json and not ranking_changed(plan.old_offer_ids, new_ids):
                    return  # the stored message still holds
            else:
                top = [s.offer_id for s in ranked[: self._cfg.scoring.k]]
                if plan.state.offers_json and not ranking_changed(plan.old_offer_ids, top):
                    return  # nothing new would have been said: no decision to log
        plan.decisions.append(outcome)
        plan.policy = outcome.state
        if outcome.offers_json is not None:
            plan.offers_json = outcome.offers_json
            plan.messages.append(
                self._offer_record(plan.user_id, outcome.offers_json, outcome.channel)
            )

    async def fire_due_carts(self, partitions: Iterable[tuple[str, int]]) -> int:
        """Fire the cart timers due now in the indexes of ``partitions`` (topic, partition),
        the ones this worker owns. Returns the number of decisions made.

        Each due user is decided once with the contact policy (one offer, related to the
        cart items), and its fired timers are removed in the same atomic write as the
        decision; the index entry is dropped only after the message is published, so a crash
        in between republishes the stored message (same ``message_id``) on the next poll.
        """
        by_topic: dict[str, list[int]] = {}
        for topic, partition in partitions:
            by_topic.setdefault(topic, []).append(partition)
        made = 0
        for topic, owned in by_topic.items():
            limit = self._cfg.cart_poll_limit
            due = await self._store.due_carts(topic, owned, self._clock_ms(), limit)
            entries = [(p, key_id) for p, key_ids in sorted(due.items()) for key_id in key_ids]
            # at most `limit` users per pass: event batches get the lock in between
            for start in range(0, len(entries), limit):
                chunk: dict[int, list[str]] = {}
                for partition, key_id in entries[start : start + limit]:
                    chunk.setdefault(partition, []).append(key_id)
                async with self._lock:
                    made += await self._fire(topic, chunk)
        return made

    async def _fire(self, topic: str, due_keys: dict[int, list[str]]) -> int:
        """Fire the due users of ``topic``'s partitions (partition -> key ids): one load,
        one decision pass, one commit, one publish and one index cleanup for all."""
        now = self._clock_ms()
        store = self._store
        where = {key_id: p for p, key_ids in due_keys.items() for key_id in key_ids}
        states = await store.load_key_ids(list(where))
        done: dict[int, list[str]] = {}
        firing: list[_Firing] = []
        outbound: list[OutboundRecord] = []
        reindex: list[UserWrite] = []
        for key_id, state in states.items():
            partition = where[key_id]
            due = due_timers(state.policy, now)
            if due:
                firing.append(_Firing(key_id, partition, state, due))
                continue
            later = next_due(state.policy)
            if later is not None:  # restarted timer: index it at its new due time
                reindex.append(
                    UserWrite(state.user_id, state.version, None,
                              cart_due=CartDue(topic, partition, later))
                )  # fmt: skip
                continue
            fired = state.policy.fired
            _, stored_trigger = _stored_offers(state.offers_json)
            if state.offers_json and fired and stored_trigger == fired[-1]:
                # fired and committed, but the publish may not have happened: again
                outbound.append(self._offer_record(state.user_id, state.offers_json))
            done.setdefault(partition, []).append(key_id)

        writes, outcomes = self._cart_decisions(firing, topic, now)
        result = await store.commit([*writes, *reindex])
        for firing_user, write, outcome in zip(firing, writes, outcomes, strict=True):
            state = firing_user.state
            if state.user_id in result.conflicts:
                self._cache.evict(state.user_id)
                continue  # changed meanwhile: the next poll sees the new state
            self._cache.put(  # what was just written: the next event batch needs no reread
                replace(
                    state,
                    version=result.versions[state.user_id],
                    policy=UserPolicyState.from_json(write.policy_json or b"{}"),
                    offers_json=outcome.offers_json or state.offers_json,
                )
            )
            if outcome.offers_json is not None:
                outbound.append(
                    self._offer_record(state.user_id, outcome.offers_json, outcome.channel)
                )
            outbound.append(self._decision_record(state.user_id, outcome.record))
            if write.cart_due is None:
                done.setdefault(firing_user.partition, []).append(firing_user.key_id)
        for write in reindex:
            self._cache.evict(write.user_id)  # rare (a restarted timer): reread next time
        if outbound:
            await self._publisher.publish(outbound)
        await store.drop_cart_index(topic, done)
        return len(outcomes)

    def _cart_decisions(
        self, firing: list[_Firing], topic: str, now: int
    ) -> tuple[list[UserWrite], list[Outcome]]:
        """One decision per user with due timers: the best offer for the cart items."""
        if not firing:
            return [], []
        catalogue = self._catalogue
        vecs = []
        for _, _, state, due in firing:
            vec = np.zeros(catalogue.dim, dtype=np.float32)
            for item_id, _ in due:
                item_vec = catalogue.item_vector(item_id)
                if item_vec is not None:
                    vec += np.asarray(item_vec, dtype=np.float32)
            if not vec.any() and state.profile is not None:
                vec = state.profile.vec.copy()  # unknown items: the user's own taste
            if self._group(state.user_id) == CONTROL:
                vec = _zeros(catalogue.dim)  # the control group: not personalised
            vecs.append(vec)
        exclude = [set(f.state.purchased) for f in firing]
        score = score_batch if self._ann is None else self._ann.score_batch
        ranked = score(
            np.stack(vecs), now, catalogue, self._candidates, exclude, reasons=False,
            exploration=self._draw_exploration(now, f"cart:{topic}:{now}"),
        )  # fmt: skip
        writes: list[UserWrite] = []
        outcomes: list[Outcome] = []
        for (_, partition, state, due), vec, candidates in zip(firing, vecs, ranked, strict=True):
            trigger = Trigger(event_id=timer_id(*due[0]), type=CART_ABANDONMENT)
            if not profiling_allowed(state.consent):
                candidates = []
            outcome = self._decider.decide(
                state.user_id, vec, candidates, state.policy, state.consent, trigger, now,
                max_offers=1, group=self._group(state.user_id),
                cart_item_ids=[item_id for item_id, _ in due],
            )  # fmt: skip
            policy = fire(outcome.state, due)
            later = next_due(policy)
            writes.append(
                UserWrite(
                    user_id=state.user_id,
                    expected_version=state.version,
                    profile=None,
                    offers_json=outcome.offers_json,
                    policy_json=policy.to_json(),
                    decisions=[outcome.record],
                    cart_due=None if later is None else CartDue(topic, partition, later),
                )
            )
            outcomes.append(outcome)
        return writes, outcomes

    def _decision_record(self, user_id: str, record: bytes) -> OutboundRecord:
        key = pseudonymise(user_id, self._cfg.pseudonym_secret).encode()
        return OutboundRecord(self._cfg.decisions_topic, key, record)

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


def _zeros(dim: int) -> npt.NDArray[np.float32]:
    return np.zeros(dim, dtype=np.float32)
