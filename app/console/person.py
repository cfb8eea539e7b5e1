"""The console's Person page: what the system holds about one user, shaped for reading.

Everything comes from what the workers already store (the user's Redis keys, read through the
:class:`~app.ports.ProfileStore` port, the same reads ``nbo api`` makes for ``/offers``,
``/profile`` and ``/decisions``) and from the policy in force (the caps):

* consent: the stored record per channel (explicit, else the policy's default), the objection
  to profiling, the time zone, and the erasure marker;
* the strongest tags of the preference vector (:func:`app.core.reasons.strongest_tags`, as
  ``/users/{id}/profile`` computes them);
* the current offers (the last published message, as ``/users/{id}/offers`` returns it) with
  their reasons;
* the decision trail (the stored decision records, newest first, as ``/users/{id}/decisions``
  returns them): why this, or why nothing, with the rejections by reason;
* the contact history against the caps: per cap of the policy in force, the messages sent in
  its rolling window (counted as :func:`app.policy.caps.count_in_window` counts them) next to
  its ``max``.

An unknown user and a known user without data give the same :class:`PersonView` (empty), as
the API answers both with the same 404. :func:`audit_subject` is what the audit log names
instead of the user id. Pure: the caller passes the time; the store is a port.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from app.core.catalog import Catalogue
from app.core.enums import Channel
from app.core.fields import USER_ID_PATTERN
from app.core.messages import addressed
from app.core.pseudonym import pseudonymise
from app.core.reasons import PROFILE_TAGS, strongest_tags
from app.policy.caps import count_in_window
from app.policy.config import Cap, ContactPolicy, format_duration
from app.policy.consent import ConsentRecord, channel_consented, profiling_allowed
from app.policy.state import UserPolicyState
from app.ports import ProfileStore

MAX_USER_ID_CHARS = 128
"""The longest user id a lookup accepts (the event schema's bound)."""
_USER_ID = re.compile(USER_ID_PATTERN)


def valid_user_id(text: str) -> bool:
    """Whether ``text`` is a user id as the event schema allows it (1-128 characters of
    ``[A-Za-z0-9._:@-]``, nothing after: a trailing newline is refused too)."""
    return len(text) <= MAX_USER_ID_CHARS and _USER_ID.fullmatch(text) is not None


def audit_subject(key: bytes, user_id: str) -> str:
    """What the audit log writes for a looked-up user: the keyed hash of the id
    (:func:`app.core.pseudonym.pseudonymise` with ``key``), never the id itself."""
    return pseudonymise(user_id, key) if key else "-"


@dataclass(frozen=True)
class PersonData:
    """What the store holds about one user (``profile_tags`` already computed against the
    catalogue, ``decisions`` as stored, newest first)."""

    user_id: str
    n_events: int = 0
    updated_at_ms: int | None = None
    vector_norm: float | None = None
    profile_tags: tuple[tuple[str, float], ...] = ()
    offers_json: bytes | None = None
    decisions: tuple[bytes, ...] = ()
    consent: ConsentRecord | None = None
    contacts: UserPolicyState = field(default_factory=UserPolicyState)
    erased_at_ms: int = 0
    titles: Mapping[str, str] = field(default_factory=dict)
    """Titles of the offers named (from the catalogue; an offer it no longer has: none)."""


class PersonSource(Protocol):
    async def person(self, user_id: str) -> PersonData: ...


def utc_text(ms: int | None) -> str:
    """Epoch milliseconds as ``2026-12-05 09:30:00 UTC`` (``-`` for none)."""
    if ms is None or ms <= 0:
        return "-"
    try:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return str(ms)


@dataclass
class StorePersonSource:
    """The Person page's reads: one ``load`` of the user's keys and one read of the
    decision records, through the store port (production: the Redis store; twin: the
    in-memory store), and the catalogue for the strongest tags."""

    store: ProfileStore
    catalogue: Catalogue

    async def person(self, user_id: str) -> PersonData:
        state = (await self.store.load([user_id]))[user_id]
        records = tuple(await self.store.decisions(user_id))
        profile = state.profile
        offers = addressed(state.offers_json, user_id) if state.offers_json else None
        data = PersonData(
            user_id,
            offers_json=offers,
            decisions=records,
            consent=state.consent,
            contacts=state.policy,
            erased_at_ms=state.erased_at_ms,
            titles=self._titles([offers, *records]),
        )
        if profile is None:
            return data
        tags = strongest_tags(profile.vec, self.catalogue, n=PROFILE_TAGS)
        return replace(
            data,
            n_events=profile.n_events,
            updated_at_ms=profile.updated_at_ms,
            vector_norm=float(np.linalg.norm(profile.vec)),
            profile_tags=tuple(tags),
        )

    def _titles(self, documents: Sequence[bytes | None]) -> dict[str, str]:
        titles = {}
        for doc in documents:
            for row in _offer_rows((_parse(doc) or {}).get("offers")):
                offer = self.catalogue.offer(row.offer_id)
                if offer is not None:
                    titles[row.offer_id] = offer.title
        return titles


@dataclass(frozen=True)
class ConsentRow:
    channel: str
    allowed: bool
    source: str
    """``record`` (stated by the user) or ``policy default``."""


@dataclass(frozen=True)
class ConsentView:
    has_record: bool
    objection: bool
    profiling_allowed: bool
    tz: str | None
    recorded_at_ms: int | None
    source: str | None
    rows: tuple[ConsentRow, ...]
    erased_at_ms: int


def consent_view(
    consent: ConsentRecord | None, policy: ContactPolicy, erased_at_ms: int
) -> ConsentView:
    """Per channel whether it may be used (the record's explicit answer, else the policy's
    default), the objection, and the erasure marker."""
    rows = tuple(
        ConsentRow(
            c.value,
            channel_consented(consent, c, policy.consent_defaults),
            "record" if consent is not None and c in consent.channels else "policy default",
        )
        for c in Channel
    )
    return ConsentView(
        has_record=consent is not None,
        objection=consent is not None and consent.objection,
        profiling_allowed=profiling_allowed(consent),
        tz=consent.tz if consent is not None else None,
        recorded_at_ms=consent.ts_ms if consent is not None else None,
        source=consent.source if consent is not None else None,
        rows=rows,
        erased_at_ms=erased_at_ms,
    )


@dataclass(frozen=True)
class CapRow:
    """One cap of the policy in force and the user's messages in its window now."""

    scope: str
    """A channel, or ``all of email, push, sms`` for a global cap."""
    window: str
    sent: int
    max: int

    @property
    def reached(self) -> bool:
        """Whether one more message now would exceed the cap (as the policy decides)."""
        return self.sent >= self.max


def contact_rows(state: UserPolicyState, policy: ContactPolicy, now_ms: int) -> list[CapRow]:
    """Every cap of ``policy`` against the user's contact history at ``now_ms``: per channel
    (in :class:`Channel` order) its own caps, then the global caps counted over
    ``global_channels`` together."""
    caps = policy.caps

    def row(scope: str, cap: Cap, times: Sequence[int]) -> CapRow:
        return CapRow(
            scope, format_duration(cap.window_ms), count_in_window(times, now_ms, cap.window_ms),
            cap.max,
        )  # fmt: skip

    rows = [
        row(c.value, cap, state.contacts.get(c, ()))
        for c in Channel
        for cap in caps.channels.get(c, ())
    ]
    if caps.global_:
        together = [c for c in Channel if c in caps.global_channels]
        shared = [t for c in together for t in state.contacts.get(c, ())]
        scope = "all of " + ", ".join(c.value for c in together)
        rows += [row(scope, cap, shared) for cap in caps.global_]
    return rows


def last_contacts(state: UserPolicyState) -> list[tuple[str, int, int]]:
    """Per channel with contacts: (channel, messages kept, the latest send time, ms)."""
    return [
        (c.value, len(times), max(times)) for c in Channel if (times := state.contacts.get(c, ()))
    ]


@dataclass(frozen=True)
class OfferRow:
    rank: int
    offer_id: str
    score: float | None
    match: float | None
    reason: str
    transactional: bool = False


@dataclass(frozen=True)
class OffersView:
    """The last published message: channel, times, trigger and its offers."""

    channel: str
    generated_at_ms: int | None
    expires_at_ms: int | None
    trigger: str
    group: str
    offers: tuple[OfferRow, ...]


def _offer_rows(offers: Any) -> tuple[OfferRow, ...]:
    rows = []
    for i, o in enumerate(offers if isinstance(offers, list) else [], start=1):
        if not isinstance(o, Mapping):
            continue
        score = o.get("score")
        match = o.get("match")
        rows.append(
            OfferRow(
                rank=int(o.get("rank", i)),
                offer_id=str(o.get("offer_id", "")),
                score=float(score) if isinstance(score, int | float) else None,
                match=float(match) if isinstance(match, int | float) else None,
                reason=str(o.get("reason") or ""),
                transactional=bool(o.get("transactional", False)),
            )
        )
    return tuple(rows)


def _trigger(doc: Mapping[str, Any]) -> str:
    trigger = doc.get("trigger")
    if not isinstance(trigger, Mapping):
        return ""
    return f"{trigger.get('type', '')} {trigger.get('event_id', '')}".strip()


def _ms(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _parse(raw: bytes | None) -> Mapping[str, Any] | None:
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    return doc if isinstance(doc, Mapping) else None


def offers_view(raw: bytes | None) -> OffersView | None:
    """The current offers (``None``: no message, or one that does not parse)."""
    doc = _parse(raw)
    if doc is None:
        return None
    return OffersView(
        channel=str(doc.get("channel", "")),
        generated_at_ms=_ms(doc.get("generated_at")),
        expires_at_ms=_ms(doc.get("expires_at")),
        trigger=_trigger(doc),
        group=str(doc.get("group", "")),
        offers=_offer_rows(doc.get("offers")),
    )


@dataclass(frozen=True)
class DecisionRow:
    """One decision record, for the trail."""

    decided_at_ms: int | None
    trigger: str
    sent: bool
    channel: str | None
    reason: str | None
    """Why nothing was sent (``None`` when sent)."""
    rejected: tuple[tuple[str, int], ...]
    """Candidates rejected, by reason, most first."""
    candidate_count: int | None
    policy_version: str
    group: str
    offers: tuple[OfferRow, ...]
    held_back: tuple[tuple[str, float | None], ...]


def decision_rows(records: Sequence[bytes]) -> list[DecisionRow]:
    """The decision records as stored (newest first); a record that does not parse is
    skipped."""
    rows = []
    for raw in records:
        doc = _parse(raw)
        if doc is None:
            continue
        found = doc.get("rejected")
        rejected: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        listed = doc.get("held_back")
        held: list[Any] = listed if isinstance(listed, list) else []
        count = doc.get("candidate_count")
        rows.append(
            DecisionRow(
                decided_at_ms=_ms(doc.get("decided_at")),
                trigger=_trigger(doc),
                sent=bool(doc.get("sent")),
                channel=str(doc["channel"]) if doc.get("channel") else None,
                reason=str(doc["reason"]) if doc.get("reason") else None,
                rejected=tuple(
                    sorted(
                        ((str(k), int(v)) for k, v in rejected.items() if isinstance(v, int)),
                        key=lambda kv: (-kv[1], kv[0]),
                    )
                ),
                candidate_count=count if isinstance(count, int) else None,
                policy_version=str(doc.get("policy_version", "")),
                group=str(doc.get("group", "")),
                offers=_offer_rows(doc.get("offers")),
                held_back=tuple(
                    (str(h.get("offer_id", "")), h.get("match"))
                    for h in held
                    if isinstance(h, Mapping)
                ),
            )
        )
    return rows


@dataclass(frozen=True)
class PersonView:
    """Everything the Person page shows about one user."""

    user_id: str
    has_data: bool
    consent: ConsentView
    n_events: int
    updated_at_ms: int | None
    vector_norm: float | None
    tags: tuple[tuple[str, float], ...]
    offers: OffersView | None
    decisions: tuple[DecisionRow, ...]
    caps: tuple[CapRow, ...]
    contacts: tuple[tuple[str, int, int], ...]
    policy_version: str
    titles: Mapping[str, str] = field(default_factory=dict)


def person_view(data: PersonData, policy: ContactPolicy, now_ms: int) -> PersonView:
    """The page of ``data`` under the policy in force, at ``now_ms``."""
    offers = offers_view(data.offers_json)
    decisions = tuple(decision_rows(data.decisions))
    has_data = bool(
        data.n_events
        or offers is not None
        or decisions
        or data.consent is not None
        or data.contacts.contacts
        or data.erased_at_ms
    )
    return PersonView(
        user_id=data.user_id,
        has_data=has_data,
        consent=consent_view(data.consent, policy, data.erased_at_ms),
        n_events=data.n_events,
        updated_at_ms=data.updated_at_ms,
        vector_norm=data.vector_norm,
        tags=data.profile_tags,
        offers=offers,
        decisions=decisions,
        caps=tuple(contact_rows(data.contacts, policy, now_ms)),
        contacts=tuple(last_contacts(data.contacts)),
        policy_version=policy.version,
        titles=data.titles,
    )
