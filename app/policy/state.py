"""Per-user contact-policy state and its pure updates (one compact JSON value in Redis).

The state holds exactly three things, each bounded:

* ``contacts``: per channel, the send times (epoch ms, ascending) of marketing messages, only
  within ``horizon_ms`` (the longest cap window) and only the newest
  :attr:`StateLimits.max_contacts_per_channel` per channel. A cap "at most N in a window"
  only ever needs the newest N contacts, so caps stay exact while
  ``max_contacts_per_channel`` >= every cap's ``max`` (the policy checks this).
* ``offers``: per offer, the feedback cooldowns need (:class:`OfferFeedback`), for at most
  :attr:`StateLimits.max_offers` offers; the least recently touched is evicted first.
* ``engagement``: per channel, impression / click / accept counts of the Beta posterior
  (:class:`ChannelEngagement`); when any count exceeds
  :attr:`StateLimits.max_engagement_trials` all three are halved (old evidence fades).

Feedback uses **event time**; contacts use the decision time. The updates are not idempotent
(an impression applied twice counts twice): feed :func:`record_feedback` only events the
profile accepted as new, and store the state atomically with the profile.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from app.core.enums import OFFER_EVENT_TYPES, Channel, EventType
from app.core.events import UserEvent

STATE_VERSION = 1
"""Version of the stored JSON layout (``"v"``)."""
MAX_COUNT = 1_000_000
"""Upper bound of any stored counter."""
DEFAULT_HORIZON_MS = 7 * 86_400_000
"""Contact history kept when no policy says otherwise: 7 days."""

Count = Annotated[int, Field(strict=True, ge=0, le=MAX_COUNT)]
EpochMs = Annotated[int, Field(strict=True, ge=0)]


class StateLimits(BaseModel):
    """Size bounds of :class:`UserPolicyState` (the ``[state]`` table of the policy file)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_offers: int = Field(default=64, ge=1, le=10_000)
    """Offers whose feedback is kept (most recently touched), default 64."""
    max_contacts_per_channel: int = Field(default=16, ge=1, le=10_000)
    """Newest contacts kept per channel, default 16 (must be >= every cap's ``max``)."""
    max_engagement_trials: int = Field(default=1000, ge=2, le=MAX_COUNT)
    """When a channel's count exceeds this, its counts are halved; default 1000."""


DEFAULT_LIMITS = StateLimits()


class OfferFeedback(BaseModel):
    """What cooldowns need to know about one offer (JSON keys ``d``, ``n``, ``i``)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    dismissed_at: EpochMs | None = Field(default=None, alias="d")
    """Event time of the latest ``offer_dismissed``."""
    impressions: Count = Field(default=0, alias="n")
    """Impressions since the last click or acceptance."""
    last_impression: EpochMs | None = Field(default=None, alias="i")
    """Event time of the latest impression."""

    @property
    def touched(self) -> int:
        """The latest time in the record (eviction order)."""
        return max(self.dismissed_at or 0, self.last_impression or 0)

    @property
    def empty(self) -> bool:
        """Whether the record says nothing a rule could use."""
        return self.dismissed_at is None and self.impressions == 0


class ChannelEngagement(BaseModel):
    """Counts of one channel (JSON keys ``i``, ``c``, ``a``)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    impressions: Count = Field(default=0, alias="i")
    clicks: Count = Field(default=0, alias="c")
    accepts: Count = Field(default=0, alias="a")

    @property
    def successes(self) -> int:
        """Engaged impressions: ``max(clicks, accepts)`` (a click then an accept of the same
        impression is one engagement; an accept without a click still counts)."""
        return max(self.clicks, self.accepts)

    @property
    def trials(self) -> int:
        """``max(impressions, successes)``: never fewer trials than successes (impressions
        may be missing when a channel service does not report them)."""
        return max(self.impressions, self.successes)


class UserPolicyState(BaseModel):
    """One user's contact history, offer feedback and channel engagement (see module doc).

    Treat as immutable: the update functions return new states. Serialise with
    :meth:`to_json` / :meth:`from_json`.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    v: Annotated[int, Field(strict=True)] = STATE_VERSION
    contacts: dict[Channel, tuple[EpochMs, ...]] = Field(default_factory=dict, alias="c")
    offers: dict[str, OfferFeedback] = Field(default_factory=dict, alias="o")
    engagement: dict[Channel, ChannelEngagement] = Field(default_factory=dict, alias="e")
    carts: dict[str, EpochMs] = Field(default_factory=dict, alias="k")
    """Pending cart-abandonment timers: item id -> due time (epoch ms, event time + delay)."""
    fired: tuple[str, ...] = Field(default=(), alias="f")
    """Ids of the newest fired cart timers (bounded), so a timer is never fired twice."""
    uid: str | None = Field(default=None, alias="u")
    """The user's id while cart timers are pending (the timer index holds key ids, which
    are pseudonyms when pseudonymisation is on; the message must name the user)."""

    def to_json(self) -> bytes:
        """Compact UTF-8 JSON (short keys, ``null`` fields and empty cart fields omitted)."""
        empty = {name for name in ("carts", "fired", "uid") if not getattr(self, name)}
        return self.model_dump_json(by_alias=True, exclude_none=True, exclude=empty).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes | str) -> UserPolicyState:
        """Parse :meth:`to_json` output; raises ``ValueError`` on anything else."""
        return cls.model_validate_json(data)


def _bump(count: int) -> int:
    return min(count + 1, MAX_COUNT)


def _offer_update(fb: OfferFeedback, kind: EventType, ts_ms: int) -> OfferFeedback:
    if kind is EventType.OFFER_IMPRESSION:
        last = ts_ms if fb.last_impression is None else max(fb.last_impression, ts_ms)
        return OfferFeedback(
            dismissed_at=fb.dismissed_at,
            impressions=_bump(fb.impressions),
            last_impression=last,
        )
    if kind in (EventType.OFFER_CLICK, EventType.OFFER_ACCEPTED):
        return OfferFeedback(dismissed_at=fb.dismissed_at, impressions=0, last_impression=None)
    # offer_dismissed
    dismissed = ts_ms if fb.dismissed_at is None else max(fb.dismissed_at, ts_ms)
    return fb.model_copy(update={"dismissed_at": dismissed})


def _engagement_update(
    eng: ChannelEngagement, kind: EventType, limits: StateLimits
) -> ChannelEngagement:
    i, c, a = eng.impressions, eng.clicks, eng.accepts
    if kind is EventType.OFFER_IMPRESSION:
        i = _bump(i)
    elif kind is EventType.OFFER_CLICK:
        c = _bump(c)
    elif kind is EventType.OFFER_ACCEPTED:
        a = _bump(a)
    if max(i, c, a) > limits.max_engagement_trials:
        i, c, a = i // 2, c // 2, a // 2
    return ChannelEngagement(impressions=i, clicks=c, accepts=a)


def _bounded_offers(offers: dict[str, OfferFeedback], limit: int) -> dict[str, OfferFeedback]:
    if len(offers) <= limit:
        return offers
    keep = sorted(offers, key=lambda o: (offers[o].touched, o), reverse=True)[:limit]
    kept = set(keep)
    return {o: fb for o, fb in offers.items() if o in kept}


def record_feedback(
    state: UserPolicyState, event: UserEvent, *, limits: StateLimits = DEFAULT_LIMITS
) -> UserPolicyState:
    """``state`` after one ``offer_*`` event (any other event returns ``state`` unchanged).

    Offer feedback (event time): an impression adds one to "impressions since the last
    click" and moves the last impression time; a click or an acceptance resets that count;
    a dismissal sets ``dismissed_at``. Channel engagement (only when ``event.channel`` is
    set): impression, click or accept counts; a dismissal changes no count.
    """
    if event.type not in OFFER_EVENT_TYPES or event.offer_id is None:
        return state
    offers = dict(state.offers)
    updated = _offer_update(offers.get(event.offer_id, OfferFeedback()), event.type, event.ts_ms)
    if updated.empty:
        offers.pop(event.offer_id, None)
    else:
        offers[event.offer_id] = updated
    engagement = state.engagement
    if event.channel is not None and event.type is not EventType.OFFER_DISMISSED:
        engagement = dict(engagement)
        engagement[event.channel] = _engagement_update(
            engagement.get(event.channel, ChannelEngagement()), event.type, limits
        )
    return state.model_copy(
        update={"offers": _bounded_offers(offers, limits.max_offers), "engagement": engagement}
    )


def prune(
    state: UserPolicyState,
    now_ms: int,
    *,
    horizon_ms: int = DEFAULT_HORIZON_MS,
    limits: StateLimits = DEFAULT_LIMITS,
) -> UserPolicyState:
    """``state`` without contacts at or before ``now_ms - horizon_ms`` and with at most
    ``max_contacts_per_channel`` (newest) per channel and ``max_offers`` offers."""
    cutoff = now_ms - horizon_ms
    contacts: dict[Channel, tuple[int, ...]] = {}
    for channel, times in state.contacts.items():
        kept = tuple(sorted(t for t in times if t > cutoff))[-limits.max_contacts_per_channel :]
        if kept:
            contacts[channel] = kept
    return state.model_copy(
        update={
            "contacts": contacts,
            "offers": _bounded_offers(dict(state.offers), limits.max_offers),
        }
    )


def record_contact(
    state: UserPolicyState,
    channel: Channel,
    now_ms: int,
    *,
    horizon_ms: int = DEFAULT_HORIZON_MS,
    limits: StateLimits = DEFAULT_LIMITS,
) -> UserPolicyState:
    """``state`` with one message sent on ``channel`` at ``now_ms``, pruned (see :func:`prune`).

    Pass the policy's ``horizon_ms`` and ``state`` limits (:class:`~app.policy.config.
    ContactPolicy`); :func:`~app.policy.decision.record_decision` does it for you.
    """
    contacts = dict(state.contacts)
    contacts[channel] = (*contacts.get(channel, ()), now_ms)
    grown = state.model_copy(update={"contacts": contacts})
    return prune(grown, now_ms, horizon_ms=horizon_ms, limits=limits)
