"""The decision: which of the ranked offers go out, on which channel, or why nothing does.

:func:`decide` walks the candidates in rank order and gives each either its usable channels
or one rejection reason. The checks, in this order (the first that leaves an offer without
a channel names the reason):

1. ``objection``: the user objected to profiling; everything is rejected, nothing sent.
2. ``ineligible``: the offer allows no channel (or not the requested one).
3. ``consent``: none of those channels is consented (explicit, else the defaults).
4. ``cooldown``: the offer is suppressed by the user's feedback.
5. ``cap``: every remaining channel has reached a frequency cap.
6. ``quiet_hours``: every remaining channel is quiet in the user's local time.
7. ``below_match``: the offer's calibrated match (:mod:`app.core.calibration`) is under
   every remaining channel's ``min_match``: it would have gone out, but is too weak to
   promise as tailored. Only an offer that carries a match is checked: without a
   calibration nothing is held back on this ground.

A **transactional** offer skips 4, 5 and 7 (and 6 when ``quiet_hours.transactional_bypass``,
the default), never 1 to 3. The best offer with a usable channel decides the channel (the
Beta rule of :mod:`app.policy.engagement` among *its* usable channels); the message carries
up to ``max_offers`` offers usable on that channel, best first, so marketing offers never
ride along on a capped or quiet channel opened by a transactional one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import lru_cache
from typing import Any

from app.core.catalog_records import OfferRecord
from app.core.enums import Channel
from app.core.fields import SCHEMA_VERSION
from app.core.ranked import ScoredOffer, offers_of
from app.policy.caps import capped_channels
from app.policy.config import ContactPolicy
from app.policy.consent import ConsentDefaults, ConsentRecord, consented_channels
from app.policy.cooldown import in_cooldown
from app.policy.engagement import pick_channel
from app.policy.quiet_hours import quiet_channels, resolve_zone
from app.policy.state import UserPolicyState, record_contact


class Rejection(StrEnum):
    """Why a candidate offer was not sent (the keys of :attr:`Decision.rejected`)."""

    OBJECTION = "objection"
    INELIGIBLE = "ineligible"
    CONSENT = "consent"
    COOLDOWN = "cooldown"
    CAP = "cap"
    QUIET_HOURS = "quiet_hours"
    BELOW_MATCH = "below_match"


NO_CANDIDATES = "no_candidates"
""":attr:`Decision.reason` when there was nothing to decide about."""


@dataclass(frozen=True)
class Decision:
    """The outcome of :func:`decide`.

    ``sent``: whether a message goes out, on ``channel`` with ``offers`` (best first).
    ``rejected``: candidate offers rejected per :class:`Rejection` value (only non-zero
    counts); candidates usable on another channel or beyond ``max_offers`` are neither
    sent nor rejected. ``reason``: ``None`` when sent; else ``"objection"``,
    ``"no_candidates"`` or the most frequent rejection (ties: the order of the checks).
    ``tz``: the time zone quiet hours used. ``decided_at``: ``now_ms``. ``held_back``:
    the candidates rejected as ``below_match``, as ``(rank, offer id, match)`` (rank
    1-based among the candidates), best first.
    """

    sent: bool
    channel: Channel | None
    offers: list[ScoredOffer]
    rejected: dict[str, int]
    candidate_count: int
    reason: str | None
    policy_version: str
    decided_at: int
    tz: str
    held_back: tuple[tuple[int, str, float], ...] = ()
    counts_toward_caps: bool = field(init=False)
    """Whether the message is a marketing contact (has a non-transactional offer); a message
    of transactional offers only is not recorded and consumes no cap."""

    def __post_init__(self) -> None:
        marketing = self.sent and any(not s.offer.transactional for s in self.offers)
        object.__setattr__(self, "counts_toward_caps", marketing)

    @property
    def offer_ids(self) -> list[str]:
        """Ids of the offers sent, best first."""
        return [s.offer_id for s in self.offers]

    def to_record(
        self,
        user_id: str,
        trigger_event_id: str,
        trigger_type: str,
        group: str = "personalised",
    ) -> dict[str, Any]:
        """The ``nbo-decisions`` audit record (JSON-serialisable): ``match`` on an offer and
        ``held_back`` only when there is one (a calibration is configured)."""
        record: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "user_id": user_id,
            "trigger": {"event_id": trigger_event_id, "type": str(trigger_type)},
            "group": group,
            "decided_at": self.decided_at,
            "policy_version": self.policy_version,
            "candidate_count": self.candidate_count,
            "rejected": dict(self.rejected),
            "sent": self.sent,
            "reason": self.reason,
            "channel": None if self.channel is None else self.channel.value,
            "tz": self.tz,
            "offers": [
                {
                    "offer_id": s.offer_id,
                    "rank": rank,
                    "score": s.score,
                    "score_parts": dict(s.parts),
                    "transactional": s.offer.transactional,
                    **({} if s.match is None else {"match": s.match}),
                }
                for rank, s in enumerate(self.offers, start=1)
            ],
        }
        if self.held_back:
            record["held_back"] = [
                {"offer_id": offer_id, "rank": rank, "match": match}
                for rank, offer_id, match in self.held_back
            ]
        return record


Verdict = tuple[tuple[Channel, ...], Rejection | None]
"""What :func:`usable_channels` returns: usable channels, or ``()`` and the rejection."""


def usable_channels(
    offer: OfferRecord,
    *,
    cooling: bool,
    consented: Collection[Channel],
    capped: Collection[Channel],
    quiet: Collection[Channel],
    requested: Channel | None = None,
    transactional_quiet_bypass: bool = True,
) -> Verdict:
    """The offer's usable channels (in the offer's order), or ``()`` and the rejection.

    Applies checks 2 to 6 of the module docstring to one offer; ``cooling``: whether the
    offer is in cooldown.
    """
    return channel_verdict(
        offer.channels,
        offer.transactional,
        cooling,
        frozenset(consented),
        frozenset(capped),
        frozenset(quiet),
        requested,
        transactional_quiet_bypass,
    )


@lru_cache(maxsize=4096)
def channel_verdict(
    offered: tuple[Channel, ...],
    transactional: bool,
    cooling: bool,
    consented: frozenset[Channel],
    capped: frozenset[Channel],
    quiet: frozenset[Channel],
    requested: Channel | None,
    transactional_quiet_bypass: bool,
) -> Verdict:
    """:func:`usable_channels` of an offer with channels ``offered``, memoised: the answer
    depends only on these few values, and users share them (most have the default consent,
    no cap reached and no quiet hours), so the worker computes each combination once."""
    channels = tuple(c for c in offered if requested is None or c == requested)
    if not channels:
        return (), Rejection.INELIGIBLE
    channels = tuple(c for c in channels if c in consented)
    if not channels:
        return (), Rejection.CONSENT
    if transactional:
        if not transactional_quiet_bypass:
            channels = tuple(c for c in channels if c not in quiet)
            if not channels:
                return (), Rejection.QUIET_HOURS
        return channels, None
    if cooling:
        return (), Rejection.COOLDOWN
    channels = tuple(c for c in channels if c not in capped)
    if not channels:
        return (), Rejection.CAP
    channels = tuple(c for c in channels if c not in quiet)
    if not channels:
        return (), Rejection.QUIET_HOURS
    return channels, None


def primary_reason(rejected: dict[str, int]) -> str:
    """The most frequent rejection; ties go to the earlier check; ``no_candidates`` if none."""
    top = max(Rejection, key=lambda r: rejected.get(r.value, 0))  # first of equal maxima
    return top.value if rejected.get(top.value, 0) > 0 else NO_CANDIDATES


def decide(
    candidates: Sequence[ScoredOffer],
    state: UserPolicyState,
    consent: ConsentRecord | None,
    now_ms: int,
    policy: ContactPolicy,
    defaults: ConsentDefaults,
    *,
    max_offers: int,
    requested_channel: Channel | None = None,
    tz_hint: str | None = None,
    matches: Sequence[float | None] | None = None,
) -> Decision:
    """Apply the contact policy to ``candidates`` (ranked best first; see module docstring).

    ``consent``: the user's record, ``None`` = none (defaults apply). ``tz_hint``: the
    triggering event's ``context.tz`` (wins over the consent's ``tz``; invalid names are
    skipped). ``requested_channel``: a ``decision_request`` restricts everything to it.
    ``max_offers`` >= 1. ``matches``: per candidate, its calibrated match percentage, or
    ``None`` (no calibration applies: ``policy.min_match`` is then not applied); the offers
    sent carry theirs. Pure: ``now_ms`` is the only clock.
    """
    if max_offers < 1:
        raise ValueError(f"max_offers must be >= 1, got {max_offers}")
    if matches is not None and len(matches) != len(candidates):
        raise ValueError(f"{len(matches)} matches for {len(candidates)} candidates")
    zone = resolve_zone(tz_hint, consent.tz if consent else None, default=policy.default_tz)
    n = len(candidates)

    def nothing(
        reason: str, rejected: dict[str, int], held_back: tuple[tuple[int, str, float], ...] = ()
    ) -> Decision:
        return Decision(
            sent=False,
            channel=None,
            offers=[],
            rejected=rejected,
            candidate_count=n,
            reason=reason,
            policy_version=policy.version,
            decided_at=now_ms,
            tz=zone.key,
            held_back=held_back,
        )

    if consent is not None and consent.objection:
        return nothing(Rejection.OBJECTION.value, {Rejection.OBJECTION.value: n} if n else {})

    consented = consented_channels(consent, defaults)
    capped = capped_channels(state, now_ms, policy.caps)
    quiet = quiet_channels(now_ms, zone, policy.quiet_hours)
    rejected: Counter[Rejection] = Counter()
    usable: list[tuple[int, tuple[Channel, ...]]] = []  # (rank, channels)
    bypass = policy.quiet_hours.transactional_bypass
    feedback = bool(state.offers)
    verdicts: dict[tuple[tuple[Channel, ...], bool, bool], Verdict] = {}  # this user's
    minimum = dict(policy.match_thresholds) if matches is not None else {}
    held: list[tuple[int, str, float]] = []
    for rank, offer in enumerate(offers_of(candidates)):  # no candidate row is built here
        cooling = feedback and in_cooldown(state, offer.offer_id, now_ms, policy.cooldown)
        key = (offer.channels, offer.transactional, cooling)
        verdict = verdicts.get(key)
        if verdict is None:  # offers share few channel sets: each asked once per user
            verdict = verdicts[key] = channel_verdict(
                *key, consented, capped, quiet, requested_channel, bypass
            )
        channels, rejection = verdict
        if rejection is None and minimum and not offer.transactional:
            match = matches[rank] if matches is not None else None
            if match is not None:  # check 7: strong enough for which channels?
                channels = tuple(c for c in channels if match >= minimum.get(c, 0.0))
                if not channels:
                    rejection = Rejection.BELOW_MATCH
                    held.append((rank + 1, offer.offer_id, match))
        if rejection is not None:
            rejected[rejection] += 1
        else:
            usable.append((rank, channels))

    counts = {reason.value: n for reason, n in rejected.items()}
    if not usable:
        return nothing(primary_reason(counts), counts, tuple(held))
    channel = pick_channel(usable[0][1], state.engagement, consent, policy.channel_choice)
    assert channel is not None  # usable[0] has at least one channel
    chosen = [rank for rank, chans in usable if channel in chans][:max_offers]
    offers = [candidates[rank] for rank in chosen]  # the rows built: only those sent
    if matches is not None:
        offers = [replace(s, match=matches[rank]) for s, rank in zip(offers, chosen, strict=True)]
    return Decision(
        sent=True,
        channel=channel,
        offers=offers,
        rejected=counts,
        candidate_count=n,
        reason=None,
        policy_version=policy.version,
        decided_at=now_ms,
        tz=zone.key,
        held_back=tuple(held),
    )


def record_decision(
    state: UserPolicyState, decision: Decision, policy: ContactPolicy
) -> UserPolicyState:
    """``state`` after publishing ``decision``: one contact on its channel when it
    :attr:`~Decision.counts_toward_caps`, pruned to the policy's horizon and limits."""
    if not decision.counts_toward_caps or decision.channel is None:
        return state
    return record_contact(
        state,
        decision.channel,
        decision.decided_at,
        horizon_ms=policy.horizon_ms,
        limits=policy.state,
    )
