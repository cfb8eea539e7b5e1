"""Cart-abandonment timers: firing the ones due, polled by a worker timer.

An ``add_to_cart`` without a purchase of the item for ``cart_delay_ms`` (event time) starts a
timer in the user's policy state, indexed per input partition. :meth:`CartTimers.fire_due`
decides each due user once with the contact policy (one offer, ranked for the cart items), and
removes its fired timers in the same atomic write as the decision; the index entry is dropped
only after the message is published, so a crash in between republishes the stored message
(same ``message_id``) on the next poll. It takes the batch lock, so it never interleaves with
an event batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import NamedTuple

import numpy as np
import pydantic_core

from app.core.catalog import Catalogue
from app.core.holdout import CONTROL
from app.core.messages import CART_ABANDONMENT, Trigger
from app.pipeline.cache import UserCache
from app.pipeline.config import PipelineConfig
from app.pipeline.decisions import DecisionMaker, Outcome
from app.pipeline.outbound import Outbound
from app.pipeline.planning import Holdout
from app.pipeline.ranking import BatchRanking
from app.pipeline.signals import BatchSignals
from app.policy.consent import profiling_allowed
from app.policy.state import UserPolicyState
from app.policy.triggers import due_timers, fire, next_due, timer_id
from app.ports import (
    CartDue,
    CartEntry,
    OutboundRecord,
    ProfileStore,
    Publisher,
    StoredUser,
    UserWrite,
)


class _Firing(NamedTuple):
    """A user with due cart timers: index entry (key id, partition, indexed due time), state,
    due timers."""

    key_id: str
    partition: int
    indexed_at: int
    state: StoredUser
    due: list[tuple[str, int]]


def fired_unsent(state: StoredUser, indexed_at: int) -> bool:
    """Whether the stored message is a cart message whose publish may not have happened: its
    timer fired (it is in ``fired``) at the due time of the index entry still there (the
    entry is dropped only after the publish), and nothing was applied to the user since it
    was generated (a later purchase, or any event, makes an old cart message wrong to send)."""
    if not state.offers_json:
        return False
    doc = pydantic_core.from_json(state.offers_json)
    trigger = doc.get("trigger", {}).get("event_id")
    if trigger not in state.policy.fired or not str(trigger).endswith(f":{indexed_at}"):
        return False
    profile = state.profile
    return profile is None or profile.updated_at_ms <= int(doc.get("generated_at", 0))


class CartTimers:
    """Fires due cart timers for the partitions a worker owns (see module doc)."""

    def __init__(
        self,
        *,
        store: ProfileStore,
        publisher: Publisher,
        cache: UserCache,
        lock: asyncio.Lock,
        catalogue: Catalogue,
        config: PipelineConfig,
        clock_ms: Callable[[], int],
        decider: DecisionMaker,
        ranking: BatchRanking,
        signals: BatchSignals,
        outbound: Outbound,
        holdout: Holdout,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._cache = cache
        self._lock = lock
        self._catalogue = catalogue
        self._cfg = config
        self._clock_ms = clock_ms
        self._decider = decider
        self._ranking = ranking
        self._signals = signals
        self._outbound = outbound
        self._holdout = holdout

    async def fire_due(self, partitions: Iterable[tuple[str, int]]) -> int:
        """Fire the cart timers due now in the indexes of ``partitions`` (topic, partition),
        the ones this worker owns. Returns the number of decisions made."""
        by_topic: dict[str, list[int]] = {}
        for topic, partition in partitions:
            by_topic.setdefault(topic, []).append(partition)
        made = 0
        for topic, owned in by_topic.items():
            limit = self._cfg.cart_poll_limit
            due = await self._store.due_carts(topic, owned, self._clock_ms(), limit)
            entries = [(p, entry) for p, found in sorted(due.items()) for entry in found]
            # at most `limit` users per pass: event batches get the lock in between
            for start in range(0, len(entries), limit):
                chunk: dict[int, list[CartEntry]] = {}
                for partition, entry in entries[start : start + limit]:
                    chunk.setdefault(partition, []).append(entry)
                async with self._lock:
                    made += await self._fire(topic, chunk)
        return made

    async def _fire(self, topic: str, due_entries: dict[int, list[CartEntry]]) -> int:
        """Fire the due users of ``topic``'s partitions (partition -> index entries): one
        load, one decision pass, one commit, one publish and one index cleanup for all.
        Users whose write conflicts are decided again with the state it returned (a cached
        state that was stale costs that one failed write), at most ``max_conflict_rounds``
        times; a user still conflicting then is left for the next poll."""
        now = self._clock_ms()
        store = self._store
        where = {key_id: (p, at) for p, found in due_entries.items() for key_id, at in found}
        states = self._cached(where)
        missing = [key_id for key_id in where if key_id not in states]
        if missing:
            states.update(await store.load_key_ids(missing))
        done: dict[int, list[CartEntry]] = {}
        outbound: list[OutboundRecord] = []
        made = 0
        for _ in range(self._cfg.max_conflict_rounds):
            if not states:
                break
            decided, states = await self._round(topic, where, states, now, done, outbound)
            made += decided
        if outbound:
            await self._publisher.publish(outbound)
        await store.drop_cart_index(topic, done)
        return made

    async def _round(
        self,
        topic: str,
        where: dict[str, tuple[int, int]],
        states: dict[str, StoredUser],
        now: int,
        done: dict[int, list[CartEntry]],
        outbound: list[OutboundRecord],
    ) -> tuple[int, dict[str, StoredUser]]:
        """One attempt for ``states`` (key id -> state); adds the index entries to drop to
        ``done`` and the records to publish to ``outbound``. Returns the decisions committed
        and the conflicting users' states (key id -> the state the failed write returned)."""
        firing: list[_Firing] = []
        reindex: list[UserWrite] = []
        key_of: dict[str, str] = {}  # user id -> key id
        for key_id, state in states.items():
            key_of[state.user_id] = key_id
            partition, indexed_at = where[key_id]
            due = due_timers(state.policy, now)
            if due:
                firing.append(_Firing(key_id, partition, indexed_at, state, due))
                continue
            later = next_due(state.policy)
            if later is not None:  # restarted timer: index it at its new due time
                reindex.append(
                    UserWrite(state.user_id, state.version, None,
                              cart_due=CartDue(topic, partition, later),
                              consent_tag=state.consent_tag,
                              erased_at_ms=state.erased_at_ms)
                )  # fmt: skip
                continue
            if fired_unsent(state, indexed_at):
                # fired and committed, but the publish may not have happened: again
                assert state.offers_json is not None
                outbound.append(self._outbound.republish(state.user_id, state.offers_json))
            done.setdefault(partition, []).append((key_id, indexed_at))

        writes, outcomes = self._decisions(firing, topic, now)
        result = await self._store.commit([*writes, *reindex])
        made = 0
        for firing_user, write, outcome in zip(firing, writes, outcomes, strict=True):
            state = firing_user.state
            if state.user_id in result.conflicts:
                self._cache.evict(state.user_id)
                continue  # changed meanwhile: decided again with the state returned
            made += 1
            self._cache.put(  # what was just written: the next event batch needs no reread
                replace(
                    state,
                    version=result.versions[state.user_id],
                    policy=UserPolicyState.from_json(write.policy_json or b"{}"),
                    offers_json=outcome.stored_json or state.offers_json,
                )
            )
            if outcome.offers_json is not None:
                outbound.append(
                    self._outbound.offer(state.user_id, outcome.offers_json, outcome.channel)
                )
            outbound.append(self._outbound.decision(state.user_id, outcome.record))
            if write.cart_due is None:
                done.setdefault(firing_user.partition, []).append(
                    (firing_user.key_id, firing_user.indexed_at)
                )
        for write in reindex:
            self._cache.evict(write.user_id)  # rare (a restarted timer): reread next time
        retry = {
            key_of[user_id]: replace(state, user_id=user_id)
            for user_id, state in result.conflicts.items()
            if user_id in key_of and user_id == key_of[user_id]  # key id = user id: no seal
        }
        return made, retry

    def _cached(self, key_ids: Iterable[str]) -> dict[str, StoredUser]:
        """The users of ``key_ids`` this worker holds in its cache (what it last wrote or
        read: a user it owns and just saw an event of), when a key id is the user id (ids
        not pseudonymised). A stale entry costs one failed compare-and-set, as in a batch."""
        if self._cfg.pseudonym_secret:
            return {}
        found = {k: self._cache.get(k) for k in key_ids}
        return {k: state for k, state in found.items() if state is not None}

    def _decisions(
        self, firing: list[_Firing], topic: str, now: int
    ) -> tuple[list[UserWrite], list[Outcome]]:
        """One decision per user with due timers: the best offer for the cart items."""
        if not firing:
            return [], []
        catalogue = self._catalogue
        groups = [self._holdout.group(f.state.user_id) for f in firing]
        vecs = []
        for (_, _, _, state, due), group in zip(firing, groups, strict=True):
            vec = np.zeros(catalogue.dim, dtype=np.float32)
            if group != CONTROL:  # the control group is not personalised
                for item_id, _ in due:
                    item_vec = catalogue.item_vector(item_id)
                    if item_vec is not None:
                        vec += np.asarray(item_vec, dtype=np.float32)
                if not vec.any() and state.profile is not None:
                    vec = state.profile.vec.copy()  # unknown items: the user's own taste
            vecs.append(vec)
        exclude = [set(f.state.purchased) for f in firing]
        exploration = self._signals.draw_exploration(now, f"cart:{topic}:{now}")
        ranked = self._ranking.rank(np.stack(vecs), now, exclude, exploration=exploration)
        writes: list[UserWrite] = []
        outcomes: list[Outcome] = []
        for (_, partition, _, state, due), group, vec, candidates in zip(
            firing, groups, vecs, ranked, strict=True
        ):
            trigger = Trigger(event_id=timer_id(*due[0]), type=CART_ABANDONMENT)
            if not profiling_allowed(state.consent):
                candidates = []
            outcome = self._decider.decide(
                state.user_id, vec, candidates, state.policy, state.consent, trigger, now,
                max_offers=1, group=group, cart_item_ids=[item_id for item_id, _ in due],
            )  # fmt: skip
            policy = fire(outcome.state, due)
            later = next_due(policy)
            writes.append(
                UserWrite(
                    user_id=state.user_id,
                    expected_version=state.version,
                    profile=None,
                    offers_json=outcome.stored_json,
                    sent=[outcome.stored_json] if outcome.stored_json is not None else [],
                    policy_json=policy.to_json(),
                    decisions=[outcome.record],
                    cart_due=None if later is None else CartDue(topic, partition, later),
                    consent_tag=state.consent_tag,
                    erased_at_ms=state.erased_at_ms,
                )
            )
            outcomes.append(outcome)
        return writes, outcomes
