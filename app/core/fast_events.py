"""The fast path of decoding a user event: msgspec (C) checks the common well-formed record.

:func:`~app.core.events.decode_event` tries :func:`decode_common` first and falls back to the
pydantic model, which stays the one definition of the contract and the only source of
rejection reasons. So the fast path only ever *accepts*, and it must accept nothing the model
rejects and give the same values for what it accepts (pinned by a differential test against
the model, hand-picked hostile records and generated ones). It declines, and the model
decides, whenever a record is outside what it can prove cheaply:

* any escape (``\\``) or whitespace after a closing quote: then ``":`` no longer marks keys
  exactly (see :func:`~app.core.decoding.duplicate_key`);
* a key count that is not exactly the fields it decoded plus the context's entries: an
  unknown field (the model ignores it, but it may hide a duplicate key or odd JSON) or a
  duplicate key (msgspec keeps the last one silently);
* a string timestamp (RFC 3339 is parsed by the model), a schema version other than 1,
  a field the event type requires that is missing, a context number that is not finite;
* anything msgspec itself rejects (types, bounds, lengths, the user id pattern, UTF-8).

A field added to :class:`~app.core.events.UserEvent` goes here too (and into
``events._from_wire``); until it does, a record carrying it is declined (its key is not
counted) and the differential test of ``tests/core/test_fast_events.py`` fails.
"""

from __future__ import annotations

import math
from typing import Annotated

import msgspec
from msgspec.structs import astuple

from app.core.enums import ITEM_EVENT_TYPES, OFFER_EVENT_TYPES, Channel, EventType
from app.core.fields import MAX_MONEY, MAX_TAG_CHARS, MAX_TAGS, SCHEMA_VERSION
from app.core.timestamps import MAX_TS_MS, MIN_TS_MS

_M = msgspec.Meta
_UNSET = msgspec.UNSET
_Unset = msgspec.UnsetType

_Identifier = Annotated[str, _M(min_length=1, max_length=128)]
_UserId = Annotated[str, _M(pattern=r"^[A-Za-z0-9._:@-]{1,128}\Z")]  # \Z: no "\n" before end
_Tags = Annotated[tuple[Annotated[str, _M(max_length=MAX_TAG_CHARS)], ...], _M(max_length=MAX_TAGS)]
_Context = Annotated[dict[str, str | bool | int | float], _M(max_length=32)]


class WireEvent(msgspec.Struct, frozen=True, gc=False):
    """A user event as msgspec reads it; a field left ``UNSET`` was absent from the record."""

    event_id: _Identifier
    user_id: _UserId
    type: EventType
    ts: Annotated[int, _M(ge=MIN_TS_MS, le=MAX_TS_MS)]
    schema_version: int | _Unset = _UNSET
    item_id: _Identifier | _Unset | None = _UNSET
    offer_id: _Identifier | _Unset | None = _UNSET
    rating: Annotated[float, _M(ge=0.5, le=5.0)] | _Unset | None = _UNSET
    value: Annotated[float, _M(ge=0.0, le=MAX_MONEY)] | _Unset | None = _UNSET
    channel: Channel | _Unset | None = _UNSET
    tags: _Tags | _Unset | None = _UNSET
    context: _Context | _Unset | None = _UNSET


_DECODER = msgspec.json.Decoder(WireEvent)
_WHITESPACE = tuple((space, b'"' + space) for space in (b" ", b"\n", b"\t", b"\r"))


def decode_common(raw: bytes) -> WireEvent | None:
    """``raw`` decoded and checked when it is a common well-formed event (see the module
    doc); ``None`` means "not proven here": decode it with the model."""
    if b"\\" in raw:
        return None
    for space, after_quote in _WHITESPACE:  # one byte first: a fast scan, rarely found
        if space in raw and after_quote in raw:
            return None
    try:
        wire = _DECODER.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    fields = astuple(wire)
    keys = len(fields) - fields.count(_UNSET)  # the fields given, each one key
    context = wire.context
    if context:
        keys += len(context)
        if float in set(map(type, context.values())):
            for value in context.values():
                if type(value) is float and not math.isfinite(value):
                    return None
    if raw.count(b'":') != keys:
        return None
    if wire.schema_version is not _UNSET and wire.schema_version != SCHEMA_VERSION:
        return None
    kind = wire.type
    if kind in ITEM_EVENT_TYPES:
        if wire.item_id is None or wire.item_id is _UNSET:
            return None
        if kind is EventType.RATING and (wire.rating is None or wire.rating is _UNSET):
            return None
    elif kind in OFFER_EVENT_TYPES:
        if wire.offer_id is None or wire.offer_id is _UNSET:
            return None
    elif kind is EventType.DECISION_REQUEST and (wire.channel is None or wire.channel is _UNSET):
        return None
    return wire
