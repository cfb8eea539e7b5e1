"""One user's plan for a batch: the events applied to the stored state, and the write.

:meth:`Planner.plan` applies a user's events of the batch to the stored profile by the pure
core (events already applied, by offset or event id, are skipped, so a redelivered batch
changes nothing), updates the user's policy state (offer feedback, channel engagement, cart
timers) and the repurchase cycles of repeatable items (:mod:`app.core.restock`) with the
newly applied events, and notes the ``decision_request``s to decide. Purchased items are
excluded from the ranking, but for the repeatable ones due at the profile's event time, which
the ranking lifts instead (not in the control group). A user
who objected to profiling gets no profile update: the batch gets one decision record. A batch
redelivered after a crash is marked ``replayed``: the processor publishes its stored messages
and decision records again. Offsets count only within one incarnation of the events topic
(its Kafka topic id, when known; see :mod:`app.core.profile`).

:meth:`Planner.write` turns the plan, once ranked and decided, into the user's one atomic,
compare-and-set write (``None`` when nothing changed).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import msgspec
import numpy as np
import numpy.typing as npt
import pydantic_core

from app.core.catalog import Catalogue
from app.core.enums import EventType
from app.core.events import UserEvent
from app.core.holdout import CONTROL, PERSONALISED, group_of
from app.core.messages import Trigger
from app.core.profile import (
    ApplyResult,
    PendingEvent,
    Profile,
    ProfileUpdate,
    apply_batch,
    offsets_for,
)
from app.core.pseudonym import seal
from app.core.restock import due_items, update_cycles
from app.core.weights import event_weight
from app.pipeline.config import PipelineConfig
from app.pipeline.decisions import DecisionMaker, Outcome
from app.pipeline.outbound import Outbound
from app.pipeline.records import InboundRecord
from app.policy.consent import profiling_allowed
from app.policy.state import UserPolicyState
from app.policy.triggers import apply_to_state, next_due
from app.ports import CartDue, OutboundRecord, StoredUser, UserWrite

UserEvents = list[tuple[InboundRecord, UserEvent]]
"""A user's events of the batch with the records they came from, in partition order."""


@dataclass(frozen=True)
class Holdout:
    """Which group a user is in: ``share`` of users (keyed by ``salt``) are the control group,
    ranked without personalisation (value, popularity and priority only) through the same
    policy."""

    share: float
    salt: str

    def group(self, user_id: str) -> str:
        """``control`` or ``personalised``."""
        return group_of(user_id, self.share, self.salt) if self.share > 0 else PERSONALISED


@dataclass
class Plan:
    """What a batch does for one user (see module doc)."""

    user_id: str
    state: StoredUser
    events: UserEvents
    result: ApplyResult
    old_offer_ids: list[str]
    stored_trigger: str | None
    exclude: set[str]
    """Purchased item ids whose offers are not eligible (all but the repeatable ones due)."""
    policy: UserPolicyState
    profiling: bool = True
    group: str = PERSONALISED
    recent: tuple[str, ...] = ()
    """The user's recent item ids after this batch, newest first."""
    fresh: list[UserEvent] = field(default_factory=list)
    replayed: bool = False
    requests: list[UserEvent] = field(default_factory=list)
    offers_json: bytes | None = None
    sent: list[bytes] = field(default_factory=list)
    """Every message this batch sends for the user, as stored (the last is ``offers_json``)."""
    messages: list[OutboundRecord] = field(default_factory=list)
    decisions: list[Outcome] = field(default_factory=list)
    purchased: set[str] = field(default_factory=set)
    """Every purchased item id known after this batch (stored and the batch's own)."""
    due: dict[str, float] = field(default_factory=dict)
    """Repeatable purchased items the user is due to buy again, with their due-ness
    (:mod:`app.core.restock`); left out of :attr:`exclude` and lifted in the ranking."""

    @property
    def trigger(self) -> UserEvent:
        """The event a ranking change is attributed to: the batch's last event."""
        return self.events[-1][1]

    @property
    def personalised(self) -> bool:
        """Whether the user is ranked on their own taste (not in the control group)."""
        return self.group != CONTROL

    def ranking_vector(self, dim: int) -> npt.NDArray[np.float32]:
        """The vector the user is ranked with: a zero vector in the control group, which then
        scores by value, popularity and priority only."""
        if self.personalised:
            return self.result.profile.vec
        return np.zeros(dim, dtype=np.float32)

    @property
    def taste(self) -> npt.NDArray[np.float32] | None:
        """The user's vector for the reasons of a decision (``None`` in the control group)."""
        return self.result.profile.vec if self.personalised else None

    @property
    def ranking_due(self) -> dict[str, float]:
        """Due repeatable items for the restock part (none in the control group)."""
        return self.due if self.personalised else {}

    @property
    def ranking_recent(self) -> tuple[str, ...]:
        """Recent items for the co-occurrence part (none in the control group)."""
        return self.recent if self.personalised else ()


class _StoredOfferId(msgspec.Struct, frozen=True):
    offer_id: str


class _StoredTrigger(msgspec.Struct, frozen=True):
    event_id: str | None = None


class _StoredMessage(msgspec.Struct):
    """The two parts of a stored NextBestOffer a batch needs (the rest is skipped unread)."""

    offers: list[_StoredOfferId] = []
    trigger: _StoredTrigger = _StoredTrigger()


_STORED = msgspec.json.Decoder(_StoredMessage)


def stored_offers(offers_json: bytes | None) -> tuple[list[str], str | None]:
    """Offer ids and trigger event id of a stored NextBestOffer message."""
    if not offers_json:
        return [], None
    try:
        doc = _STORED.decode(offers_json)
    except msgspec.DecodeError:  # not of the expected shape: read (or refuse) it as before
        raw = pydantic_core.from_json(offers_json)
        return [o["offer_id"] for o in raw.get("offers", [])], raw.get("trigger", {}).get(
            "event_id"
        )
    return [o.offer_id for o in doc.offers], doc.trigger.event_id


def item_times(events: UserEvents, kind: EventType | None = None) -> dict[str, int]:
    """Item id -> event time (ms) of the item events (of type ``kind``, if given)."""
    return {
        e.item_id: e.ts_ms
        for _, e in events
        if e.is_item_event and e.item_id is not None and (kind is None or e.type is kind)
    }


def recent_items(events: UserEvents, stored: tuple[str, ...], n: int) -> tuple[str, ...]:
    """The newest ``n`` distinct items: the batch's item events (newest first, as the ``seen``
    zset orders them) in front of the stored ones."""
    batch = sorted(item_times(events).items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
    return tuple(dict.fromkeys([*(item for item, _ in batch), *stored]))[:n]


def after_erasure(events: UserEvents, erased_at_ms: int) -> UserEvents:
    """The events dated after the user's latest erasure (all of them without one): an event
    from before it, redelivered or still waiting in consumer lag, must not bring back what
    the erasure deleted."""
    if erased_at_ms <= 0:
        return events
    return [(record, event) for record, event in events if event.ts_ms > erased_at_ms]


def fresh_events(events: UserEvents, ids: frozenset[str]) -> list[UserEvent]:
    """The events whose ids were applied now, each once, in order."""
    out: dict[str, UserEvent] = {}
    for _, event in events:
        if event.event_id in ids and event.event_id not in out:
            out[event.event_id] = event
    return list(out.values())


@dataclass(frozen=True)
class _Pending:
    """A user's plan waiting for the batch's profile update."""

    state: StoredUser
    events: UserEvents
    pending: list[PendingEvent]
    topic_id: str
    old_ids: list[str]
    stored_trigger: str | None


class Planner:
    """Plans and writes per user, the profiles of a batch updated together (module doc)."""

    def __init__(
        self,
        catalogue: Catalogue,
        config: PipelineConfig,
        decider: DecisionMaker,
        outbound: Outbound,
        holdout: Holdout,
        topic_ids: Mapping[str, str],
    ) -> None:
        """``topic_ids``: topic -> its Kafka topic id, as far as known (read at each plan)."""
        self._catalogue = catalogue
        self._cfg = config
        self._decider = decider
        self._outbound = outbound
        self._holdout = holdout
        self._topic_ids = topic_ids

    def plan(self, state: StoredUser, events: UserEvents, now: int) -> Plan:
        """The user's plan for the batch's ``events`` against the stored ``state``."""
        result = self.plan_batch([(state, events)], now)[0]
        if isinstance(result, Exception):
            raise result
        return result

    def plan_batch(
        self, users: Sequence[tuple[StoredUser, UserEvents]], now: int
    ) -> list[Plan | Exception]:
        """Each user's plan (or the exception that user's data raised: bad data for one
        user must not stop the others), the profiles updated in one numpy pass
        (:func:`~app.core.profile.apply_batch`)."""
        out: list[Plan | Exception | _Pending] = []
        for state, events in users:
            try:
                out.append(self._prepare(state, events, now))
            except Exception as exc:
                out.append(exc)
        pending = [p for p in out if isinstance(p, _Pending)]
        updates = [ProfileUpdate(p.state.profile, p.pending, p.topic_id) for p in pending]
        results: list[ApplyResult | Exception]
        try:
            results = list(apply_batch(updates, self._cfg.profile, now_ms=now))
        except Exception:  # one user's data: find whose, apply the others
            results = []
            for update in updates:
                try:
                    results.append(apply_batch([update], self._cfg.profile, now_ms=now)[0])
                except Exception as exc:
                    results.append(exc)
        applied = iter(results)  # aligned with the _Pending items of ``out``, in order
        plans: list[Plan | Exception] = []
        for item in out:
            if not isinstance(item, _Pending):
                plans.append(item)
                continue
            result = next(applied)
            if isinstance(result, Exception):
                plans.append(result)
                continue
            try:
                plans.append(self._finish(item, result))
            except Exception as exc:
                plans.append(exc)
        return plans

    def _prepare(self, state: StoredUser, events: UserEvents, now: int) -> Plan | _Pending:
        """A finished plan for an objector, else what the profile update needs."""
        catalogue = self._catalogue
        old_ids, stored_trigger = stored_offers(state.offers_json)
        if not profiling_allowed(state.consent):
            # objection to profiling: nothing is applied; the batch gets one decision record
            unchanged = ApplyResult(state.profile or Profile.empty(catalogue.dim), 0, 0, 0, False)
            plan = Plan(
                state.user_id, state, events, unchanged, old_ids, stored_trigger,
                set(state.purchased), state.policy, profiling=False, recent=state.recent,
                purchased=set(state.purchased),
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
        topic_id = self._topic_ids.get(events[0][0].topic, "") if events else ""
        return _Pending(state, events, pending, topic_id, old_ids, stored_trigger)

    def _finish(self, item: _Pending, result: ApplyResult) -> Plan:
        """The plan of a user whose profile update is ``result``."""
        state, events = item.state, item.events
        purchased = set(state.purchased) | item_times(events, EventType.PURCHASE).keys()
        fresh = fresh_events(events, result.fresh_ids)
        result, due = self._restock(result, fresh)
        group = self._holdout.group(state.user_id)
        if group == CONTROL:  # not personalised: purchased items stay excluded
            due = {}
        exclude = purchased - due.keys()
        policy = apply_to_state(
            state.policy,
            seal(state.user_id, self._cfg.pseudonym_secret),  # never in clear when pseudonymised
            fresh,
            cart_delay_ms=self._cfg.cart_delay_ms,
            limits=self._cfg.policy.state,
        )
        recent = recent_items(events, state.recent, self._cfg.recent.n_recent)
        plan = Plan(
            state.user_id, state, events, result, item.old_ids, item.stored_trigger, exclude,
            policy, group=group, fresh=fresh, recent=recent, purchased=purchased, due=due,
        )  # fmt: skip
        by_channel = {e.channel: e for e in fresh if e.type is EventType.DECISION_REQUEST}
        plan.requests = list(by_channel.values())
        stored_offsets = offsets_for(state.profile, item.topic_id)
        if not result.changed and any(
            r.offset <= stored_offsets.get(r.partition, -1) for r, _ in events
        ):  # redelivered (not a producer's duplicate at a new offset)
            plan.replayed = True  # its messages are published again by the processor
        return plan

    def _restock(
        self, result: ApplyResult, fresh: Sequence[UserEvent]
    ) -> tuple[ApplyResult, dict[str, float]]:
        """``result`` with the repurchase cycles of the fresh purchases of repeatable items
        (:mod:`app.core.restock`; only events applied now count, so a redelivery changes
        nothing), and the items due at the profile's event time."""
        snap = self._catalogue.snapshot()
        cfg = self._cfg.restock
        bought = [
            (e.item_id, e.ts_ms)
            for e in fresh
            if e.type is EventType.PURCHASE
            and e.item_id is not None
            and e.item_id in snap.repeatable
        ]
        profile = result.profile
        if bought:
            cycles = update_cycles(profile.restock, bought, cfg)
            profile = dataclasses.replace(profile, restock=cycles)
            result = dataclasses.replace(result, profile=profile)
        if not profile.restock:
            return result, {}
        due = due_items(
            profile.restock, profile.t_ref_ms, cfg, snap.repeatable, snap.restock_prior_ms
        )
        return result, due

    def write(self, plan: Plan) -> UserWrite | None:
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
            # an objector's behaviour is stored nowhere: no vector, seen or purchased items
            seen=item_times(plan.events) if plan.profiling else {},
            purchased=item_times(plan.events, EventType.PURCHASE) if plan.profiling else {},
            policy_json=plan.policy.to_json() if policy_changed else None,
            decisions=[d.record for d in plan.decisions],
            sent=plan.sent,
            cart_due=cart_due,
            consent_tag=plan.state.consent_tag,
            erased_at_ms=plan.state.erased_at_ms,
        )
