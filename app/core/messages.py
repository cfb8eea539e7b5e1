"""The ``NextBestOffer`` contract (output topic) and how to build one."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.core.enums import Channel, EventType
from app.core.fields import SCHEMA_VERSION, SchemaVersion
from app.core.ranked import ScoredOffer

MESSAGE_ID_NAMESPACE = uuid.UUID("a1eb603a-69a5-5742-9f87-a99147c6ff12")
"""Fixed namespace of message ids (= uuid5(NAMESPACE_URL, "urn:nbo-stream:next-best-offer:v1"))."""
_NAMESPACE_BYTES = MESSAGE_ID_NAMESPACE.bytes
DEFAULT_TTL_MS = 86_400_000
"""Default lifetime of a next-best-offer message, ms (24 h)."""


def message_id(subject: str, event_id: str) -> str:
    """``uuid5(MESSAGE_ID_NAMESPACE, f"{subject}\\x1f{event_id}")``: a replay gives the same id.
    ``subject`` is the user id, or its pseudonym when ids are pseudonymised
    (:func:`app.core.pseudonym.pseudonymise`), so the id cannot be recomputed from a guessed
    user id without the secret."""
    digest = hashlib.sha1(_NAMESPACE_BYTES + f"{subject}\x1f{event_id}".encode()).digest()
    # uuid5 by RFC 4122 without building a UUID object (a test pins it to uuid.uuid5): the
    # first 16 bytes of the SHA-1, version 5 in the high nibble of byte 6, variant 10 in byte 8
    raw = bytearray(digest[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class RankedOffer(BaseModel):
    """One offer of a message; ``score_parts`` are weighted contributions summing to ``score``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    offer_id: str
    rank: int = Field(ge=1)
    """1-based position."""
    score: float
    score_parts: dict[str, float]
    """At least ``affinity``, ``value``, ``popularity``, ``priority``."""
    reason: Annotated[str, StringConstraints(min_length=1, pattern=r"\S")]
    """Why this offer, in words for the person (never empty or blank: a message cannot be
    built without one, see :mod:`app.core.reasons`)."""
    match: float | None = Field(default=None, ge=0.0, le=100.0, allow_inf_nan=False)
    """The calibrated probability, in percent (0-100, one decimal), that the person takes
    this offer up (:mod:`app.core.calibration`). Absent from the JSON when the worker has no
    calibration that applies (none configured, the control group, a cart timer): the engine
    then makes no such claim."""


CART_ABANDONMENT = "cart_abandonment"
"""Trigger type of a message sent because a cart timer fired (not an event type)."""


class Trigger(BaseModel):
    """What caused the message: an event (its id and type), or a fired cart timer
    (``type`` ``cart_abandonment``, ``event_id`` the timer id ``cart:<item_id>:<due_ms>``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: str
    type: EventType | Literal["cart_abandonment"]


class ModelInfo(BaseModel):
    """What produced the ranking."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    vector_dim: int
    version: str


class NextBestOffer(BaseModel):
    """Ranked offers for one user on one channel, schema version 1. Times are epoch ms."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: SchemaVersion = SCHEMA_VERSION
    message_id: str
    user_id: str
    channel: Channel
    offers: tuple[RankedOffer, ...]
    trigger: Trigger
    generated_at: int
    expires_at: int
    model: ModelInfo
    group: str = "personalised"
    """Holdout group: ``personalised``, or ``control`` (non-personalised popularity ranking,
    the baseline that lift is measured against)."""

    def to_json_bytes(self) -> bytes:
        """Compact UTF-8 JSON; an offer without ``match`` has no such key (the only optional
        field, so a message without a calibration is what it was before the field existed)."""
        return self.__pydantic_serializer__.to_json(self, exclude_none=True)


def message_for(
    user_id: str,
    trigger: Trigger,
    channel: Channel,
    offers: Sequence[ScoredOffer],
    now_ms: int,
    *,
    model_version: str,
    dim: int,
    ttl_ms: int = DEFAULT_TTL_MS,
    group: str = "personalised",
    subject: str | None = None,
) -> NextBestOffer:
    """The message sending ``offers`` (best first, ranks 1..n) on ``channel``, as decided by
    the contact policy. ``message_id`` derives from ``subject`` (the user's pseudonym; the
    user id when ``None``) and the trigger's id."""
    return NextBestOffer(
        message_id=message_id(subject or user_id, trigger.event_id),
        user_id=user_id,
        channel=channel,
        offers=tuple(
            RankedOffer(
                offer_id=s.offer_id,
                rank=rank,
                score=s.score,
                score_parts=dict(s.parts),
                reason=s.reason,
                match=s.match,
            )
            for rank, s in enumerate(offers, start=1)
        ),
        trigger=trigger,
        generated_at=now_ms,
        expires_at=now_ms + ttl_ms,
        model=ModelInfo(vector_dim=dim, version=model_version),
        group=group,
    )


def stored_form(message: NextBestOffer, subject: str) -> bytes:
    """The message as kept in Redis: addressed to ``subject`` (the user's pseudonym) instead
    of the user id, so no stored value holds the id in clear; the message itself when they
    are the same (ids not pseudonymised)."""
    if subject == message.user_id:
        return message.to_json_bytes()
    return message.model_copy(update={"user_id": subject}).to_json_bytes()


def addressed(stored: bytes, user_id: str) -> bytes:
    """A stored message (:func:`stored_form`) addressed to ``user_id`` again, byte for byte
    as it was published."""
    message = NextBestOffer.model_validate_json(stored)
    if message.user_id == user_id:
        return stored
    return message.model_copy(update={"user_id": user_id}).to_json_bytes()
