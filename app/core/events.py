"""The ``UserEvent`` contract (input topic) and its decoder."""

from __future__ import annotations

from typing import Annotated, Self

import msgspec
from msgspec.structs import astuple
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from app.core.decoding import DEFAULT_MAX_BYTES, decode_model
from app.core.enums import ITEM_EVENT_TYPES, OFFER_EVENT_TYPES, Channel, EventType
from app.core.fast_events import WireEvent, decode_common
from app.core.fields import (
    SCHEMA_VERSION,
    Identifier,
    Money,
    SchemaVersion,
    Tags,
    Timestamp,
    UserId,
)

ContextValue = StrictStr | StrictBool | StrictInt | StrictFloat
"""A value of the free-form ``context`` map."""

MAX_CONTEXT_ENTRIES = 32
"""Largest number of entries of ``UserEvent.context``."""


class UserEvent(BaseModel):
    """One user interaction, schema version 1.

    Tolerant reader: unknown fields are ignored. Wrong types are rejected (numbers must be
    JSON numbers, no booleans as numbers). ``ts`` (RFC 3339 with offset, or integer epoch ms)
    is stored as :attr:`ts_ms` (epoch ms UTC) and serialised back as ``ts``.
    Build one in Python with the wire names: ``UserEvent(event_id=..., ts=...)``.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    schema_version: SchemaVersion = SCHEMA_VERSION
    event_id: Identifier
    user_id: UserId
    type: EventType
    item_id: Identifier | None = None
    """Required for item events (:data:`~app.core.enums.ITEM_EVENT_TYPES`)."""
    offer_id: Identifier | None = None
    """Required for ``offer_*`` events."""
    rating: Annotated[float, Field(strict=True, ge=0.5, le=5.0)] | None = None
    """0.5 to 5 stars; required for ``type == "rating"``."""
    value: Money | None = None
    """Money attached to the event (e.g. a purchase amount), >= 0."""
    channel: Channel | None = None
    ts_ms: Timestamp = Field(validation_alias="ts", serialization_alias="ts")
    """Event time, epoch ms UTC (wire name ``ts``)."""
    tags: Tags = ()
    """Tags describing the item, used when the item is unknown to the catalogue."""
    context: Annotated[dict[str, ContextValue], Field(max_length=MAX_CONTEXT_ENTRIES)] | None = None

    @field_validator("tags", mode="before")
    @classmethod
    def _null_tags(cls, value: object) -> object:
        return () if value is None else value

    @model_validator(mode="after")
    def _required_by_type(self) -> Self:
        if self.type in ITEM_EVENT_TYPES and self.item_id is None:
            raise ValueError(f"item_id is required for type '{self.type}'")
        if self.type in OFFER_EVENT_TYPES and self.offer_id is None:
            raise ValueError(f"offer_id is required for type '{self.type}'")
        if self.type is EventType.RATING and self.rating is None:
            raise ValueError("rating is required for type 'rating'")
        if self.type is EventType.DECISION_REQUEST and self.channel is None:
            raise ValueError("channel is required for type 'decision_request'")
        return self

    @property
    def is_item_event(self) -> bool:
        """Whether the event is about an item (``item_id`` set)."""
        return self.type in ITEM_EVENT_TYPES

    @property
    def is_offer_event(self) -> bool:
        """Whether the event is about an offer (``offer_id`` set)."""
        return self.type in OFFER_EVENT_TYPES

    def to_json_bytes(self) -> bytes:
        """Compact wire JSON (``ts`` as epoch ms, ``None`` fields omitted)."""
        return self.model_dump_json(by_alias=True, exclude_none=True).encode("utf-8")


def decode_event(raw: bytes | None, max_bytes: int = DEFAULT_MAX_BYTES) -> UserEvent:
    """Decode one value of the events topic; raises :class:`~app.core.errors.EventRejected`.

    ``max_bytes`` defaults to 65536. A common well-formed record takes the C fast path
    (:mod:`app.core.fast_events`); every other record, and every rejection, is the model's.
    """
    if raw and len(raw) <= max_bytes:
        wire = decode_common(raw)
        if wire is not None:
            return _from_wire(wire)
    return decode_model(UserEvent, raw, max_bytes)


_new = object.__new__
_set = object.__setattr__
_UNSET = msgspec.UNSET


def _from_wire(wire: WireEvent) -> UserEvent:
    """The :class:`UserEvent` of a record the fast path proved valid, built as
    ``model_construct`` would (fields, fields set, no extra or private state) without its
    per-field overhead; the differential test compares it with the model's own result."""
    item_id, offer_id, rating = wire.item_id, wire.offer_id, wire.rating
    value, channel, tags, context = wire.value, wire.channel, wire.tags, wire.context
    event = _new(UserEvent)
    _set(
        event,
        "__dict__",
        {
            "schema_version": SCHEMA_VERSION,
            "event_id": wire.event_id,
            "user_id": wire.user_id,
            "type": wire.type,
            "item_id": None if item_id is _UNSET else item_id,
            "offer_id": None if offer_id is _UNSET else offer_id,
            "rating": None if rating is _UNSET else rating,
            "value": None if value is _UNSET else value,
            "channel": None if channel is _UNSET else channel,
            "ts_ms": wire.ts,
            "tags": tags or (),
            "context": None if context is _UNSET else context,
        },
    )
    given = {n for n, v in zip(_FIELD_NAMES, astuple(wire), strict=True) if v is not _UNSET}
    _set(event, "__pydantic_fields_set__", given)
    _set(event, "__pydantic_extra__", None)
    _set(event, "__pydantic_private__", None)
    return event


_FIELD_NAMES = tuple("ts_ms" if f == "ts" else f for f in WireEvent.__struct_fields__)
