"""Privacy requests (``privacy-requests``) and their audit records (``privacy-audit``), pure.

* A :class:`PrivacyRequest` asks to **erase** everything stored about a user, or to
  **export** it. The topic is keyed by ``user_id``; a record whose key is set and differs
  from its ``user_id`` is rejected (like an undecodable one) and goes to the dead-letter topic.
* Each handled request produces exactly one audit record (at least once: after a crash the
  request is handled again, and an erase then reports zero keys; consumers keep the first
  record of a ``request_id``). Times are epoch ms: ``requested_at`` is the request's ``ts``,
  ``completed_at`` the worker's clock when the work was done.
* An unknown user is not an error: the status is ``completed`` with zero counts (erase) or
  empty data (export: no profile, no consent, no history, no decisions, no offers), because a
  pseudonymised store cannot tell "never seen" from "already erased".

The storage adapters (:class:`app.ports.UserAdmin`) do the work; these builders only shape
the records, so the wire format is tested here without Redis or Kafka.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.decoding import DEFAULT_MAX_BYTES, decode_model
from app.core.errors import EventRejected, RejectReason
from app.core.fields import (
    SCHEMA_VERSION,
    USER_ID_PATTERN,
    Identifier,
    SchemaVersion,
    Timestamp,
    UserId,
)
from app.core.profile import Profile

TAG_SCORE_DIGITS = 4
"""Decimal digits of an exported tag score (as ``GET /users/{id}/profile``)."""

_USER_ID = re.compile(USER_ID_PATTERN)


class PrivacyKind(StrEnum):
    """What a privacy request asks for."""

    ERASE = "erase"
    """Delete every key of the user in Redis and the user's cart-timer index entries."""
    EXPORT = "export"
    """Publish everything stored about the user on ``privacy-audit``."""


class AuditStatus(StrEnum):
    """Outcome of a privacy request (only ``completed`` today: failures are retried)."""

    COMPLETED = "completed"


class PrivacyRequest(BaseModel):
    """One value of ``privacy-requests``, schema version 1 (tolerant reader: unknown
    fields ignored). ``ts`` (RFC 3339 with offset or epoch ms) is stored as :attr:`ts_ms`."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: SchemaVersion = SCHEMA_VERSION
    request_id: Identifier
    """The requester's id of this request (1-128 chars), echoed in the audit record."""
    user_id: UserId
    kind: PrivacyKind
    ts_ms: Timestamp = Field(validation_alias="ts", serialization_alias="ts")
    """When the request was made, epoch ms."""


def decode_privacy_request(raw: bytes | None, max_bytes: int = DEFAULT_MAX_BYTES) -> PrivacyRequest:
    """Decode one value of ``privacy-requests``; raises :class:`EventRejected`."""
    return decode_model(PrivacyRequest, raw, max_bytes)


def key_user_id(key: bytes | None) -> str:
    """The user id a Kafka key names (UTF-8, :data:`USER_ID_PATTERN`); raises
    :class:`EventRejected` (``SchemaViolation``) for a missing or invalid key. Used for
    tombstones, whose only user id is the key."""
    try:
        text = key.decode("utf-8") if key is not None else ""
    except UnicodeDecodeError:
        text = ""
    if not _USER_ID.fullmatch(text):  # match() would let a trailing newline through
        raise EventRejected(RejectReason.SCHEMA_VIOLATION, "key is not a valid user id")
    return text


def check_key(key: bytes | None, user_id: str) -> None:
    """Raise :class:`EventRejected` (``SchemaViolation``) when ``key`` is set and is not
    ``user_id``: on a topic keyed by user id, such a record would be compacted or ordered
    under another user."""
    if key is not None and key != user_id.encode("utf-8"):
        raise EventRejected(RejectReason.SCHEMA_VIOLATION, "key does not match user_id")


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_json_bytes(self) -> bytes:
        """Compact wire JSON (UTF-8)."""
        return self.model_dump_json().encode("utf-8")


class TagScore(_Wire):
    """One strongest tag of an exported profile: the cosine of the profile with the tag."""

    tag: str
    score: float


class ExportedCycle(_Wire):
    """One repurchase cycle of a repeatable item (:mod:`app.core.restock`): the latest
    purchase (epoch ms), the learned interval (ms; 0 after one purchase) and the purchases
    counted."""

    item_id: str
    last_purchase: int
    interval_ms: int
    purchases: int


class ExportedProfile(_Wire):
    """The profile part of an export: the raw preference vector (D floats), ``n_events``,
    ``updated_at`` (epoch ms), the strongest catalogue tags and the repurchase cycles of
    repeatable items (by item id)."""

    vector: list[float]
    n_events: int
    updated_at: int
    strongest_tags: list[TagScore]
    restock: list[ExportedCycle] = Field(default_factory=list)


class ExportData(_Wire):
    """Everything stored about one user; every part empty for an unknown user.

    ``consent``, ``contact_history`` (the contact-policy state), ``decisions`` (newest
    first) and ``current_offers`` (the last NextBestOffer message) are the stored JSON
    documents as they are; ``seen_items`` / ``purchased_items`` map item id -> event time
    (epoch ms) of the recent-item sets.
    """

    profile: ExportedProfile | None = None
    consent: Any = None
    contact_history: Any = None
    decisions: list[Any] = Field(default_factory=list)
    current_offers: Any = None
    seen_items: dict[str, int] = Field(default_factory=dict)
    purchased_items: dict[str, int] = Field(default_factory=dict)
    sent_messages: list[Any] = Field(default_factory=list)
    """The messages of the latest batch that sent the user any (oldest first)."""


NonNegative = Annotated[int, Field(ge=0)]


class _Audit(_Wire):
    """What every ``privacy-audit`` record carries (schema version 1)."""

    schema_version: int = SCHEMA_VERSION
    request_id: str
    user_id: str
    status: AuditStatus = AuditStatus.COMPLETED
    requested_at: int
    completed_at: int


class ErasureAudit(_Audit):
    """The ``privacy-audit`` record of an erase request."""

    kind: Literal["erase"] = "erase"
    deleted_keys: NonNegative
    """Redis keys of the user that existed and were deleted."""
    timers_removed: NonNegative
    """Cart-timer index entries of the user that were removed."""
    erased_at: NonNegative
    """The erasure time (epoch ms) written to the user's erasure marker: the user's events
    and consent records dated at or before it are never applied (rebuilds restore the
    markers from these records)."""


class ExportAudit(_Audit):
    """The ``privacy-audit`` record of an export request."""

    kind: Literal["export"] = "export"
    data: ExportData


def erase_audit(
    request: PrivacyRequest,
    deleted_keys: int,
    timers_removed: int,
    completed_at_ms: int,
    erased_at_ms: int,
) -> ErasureAudit:
    """The audit record of a completed erase of ``request.user_id``."""
    return ErasureAudit(
        request_id=request.request_id,
        user_id=request.user_id,
        deleted_keys=deleted_keys,
        timers_removed=timers_removed,
        erased_at=erased_at_ms,
        requested_at=request.ts_ms,
        completed_at=completed_at_ms,
    )


def exported_profile(
    profile: Profile | None, strongest_tags: Sequence[tuple[str, float]]
) -> ExportedProfile | None:
    """The export of a stored profile (``None`` stays ``None``); tag scores rounded to
    :data:`TAG_SCORE_DIGITS` digits."""
    if profile is None:
        return None
    return ExportedProfile(
        vector=[float(x) for x in profile.vec],
        n_events=profile.n_events,
        updated_at=profile.updated_at_ms,
        strongest_tags=[
            TagScore(tag=tag, score=round(score, TAG_SCORE_DIGITS)) for tag, score in strongest_tags
        ],
        restock=[
            ExportedCycle(
                item_id=item,
                last_purchase=c.last_ms,
                interval_ms=c.interval_ms,
                purchases=c.purchases,
            )
            for item, c in sorted(profile.restock.items())
        ],
    )


def export_data(
    *,
    profile: Profile | None,
    strongest_tags: Sequence[tuple[str, float]] = (),
    consent: Any = None,
    contact_history: Any = None,
    decisions: Sequence[Any] = (),
    current_offers: Any = None,
    seen_items: Mapping[str, int] | None = None,
    purchased_items: Mapping[str, int] | None = None,
    sent_messages: Sequence[Any] = (),
) -> ExportData:
    """The ``data`` of an export from the decoded stored parts (see :class:`ExportData`)."""
    return ExportData(
        profile=exported_profile(profile, strongest_tags),
        consent=consent,
        contact_history=contact_history,
        decisions=list(decisions),
        current_offers=current_offers,
        seen_items=dict(seen_items or {}),
        purchased_items=dict(purchased_items or {}),
        sent_messages=list(sent_messages),
    )


def export_audit(request: PrivacyRequest, data: ExportData, completed_at_ms: int) -> ExportAudit:
    """The audit record of a completed export of ``request.user_id``."""
    return ExportAudit(
        request_id=request.request_id,
        user_id=request.user_id,
        data=data,
        requested_at=request.ts_ms,
        completed_at=completed_at_ms,
    )
