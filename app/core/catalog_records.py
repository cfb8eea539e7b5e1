"""The catalogue contracts (compacted topics): ``Item`` and ``Offer``, and their decoders.

A catalogue message whose value is ``None`` is a tombstone (delete by key); the caller
handles it before calling a decoder (which would reject it as ``EmptyValue``).
"""

from __future__ import annotations

from sys import intern
from typing import Annotated, Self

import msgspec
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    field_validator,
    model_validator,
)

from app.core.decoding import DEFAULT_MAX_BYTES, decode_model
from app.core.enums import Channel
from app.core.fields import (
    SCHEMA_VERSION,
    Identifier,
    Money,
    SchemaVersion,
    Tags,
    Timestamp,
    VectorValues,
)

Priority = Annotated[int, Field(strict=True, ge=-(2**31), le=2**31 - 1)]
RestockDays = Annotated[float, Field(strict=True, gt=0, le=3650)]
"""A repurchase interval in days: positive, at most ten years."""


class Item(BaseModel):
    """An item of the catalogue, schema version 1 (unknown fields ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    schema_version: SchemaVersion = SCHEMA_VERSION
    item_id: Identifier
    tags: Tags = ()
    vector: VectorValues | None = None
    """Explicit embedding of D floats; without it the vector is the hash of the tags."""
    title: StrictStr | None = None
    price: Money | None = None
    repeatable: StrictBool = False
    """Bought again and again (groceries, consumables): once purchased it is offered again
    when the person is due to restock it (:mod:`app.core.restock`), not excluded for good."""
    restock_days: RestockDays | None = None
    """The item's typical interval between repeat purchases, days (e.g. the population's,
    from history): the prior of a person who bought it once. Without it, the setting
    ``NBO_RESTOCK_PRIOR_DAYS``."""


class Offer(BaseModel):
    """An offer that can be recommended, schema version 1 (unknown fields ignored).

    ``valid_from`` (inclusive) and ``valid_until`` (exclusive) are epoch ms once validated;
    a window with ``valid_until < valid_from`` is rejected. An offer with no ``channels``
    is never eligible.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    schema_version: SchemaVersion = SCHEMA_VERSION
    offer_id: Identifier
    title: StrictStr
    item_ids: tuple[Identifier, ...] = ()
    """Items the offer is about; an item recommendation is an offer of one item."""
    tags: Tags = ()
    vector: VectorValues | None = None
    value: Money = 0.0
    """Expected business value of an acceptance (money, >= 0, default 0)."""
    channels: tuple[Channel, ...] = ()
    """Allowed channels in order of preference (duplicates dropped)."""
    valid_from: Timestamp | None = None
    valid_until: Timestamp | None = None
    priority: Priority = 0
    repeatable: StrictBool = False
    """Every item of the offer counts as repeatable (see :attr:`Item.repeatable`)."""
    transactional: StrictBool = False
    """A service message (e.g. order status), not marketing: bypasses the contact policy's
    caps and cooldowns (and, by default, quiet hours), never consent or an objection."""

    @field_validator("channels")
    @classmethod
    def _dedupe_channels(cls, value: tuple[Channel, ...]) -> tuple[Channel, ...]:
        return tuple(dict.fromkeys(value))

    @model_validator(mode="after")
    def _window_order(self) -> Self:
        if (
            self.valid_from is not None
            and self.valid_until is not None
            and self.valid_until < self.valid_from
        ):
            raise ValueError("valid_until is before valid_from")
        return self


_CHANNEL_SETS: dict[tuple[Channel, ...], tuple[Channel, ...]] = {}
"""One shared tuple per distinct channel list of the offers (bounded: ordered lists of five
channels without repeats)."""


class OfferRecord(msgspec.Struct, frozen=True, gc=False):
    """An :class:`Offer` as the catalogue keeps it: the same fields and values, already
    validated, in a slotted struct outside the garbage collector's tracking: ~120 bytes and
    the values, where the pydantic model costs ~1.4 KB (its ``__dict__`` and fields-set).
    100,000 offers: ~12 MB of structs instead of ~140 MB of models."""

    offer_id: str
    title: str
    item_ids: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    vector: tuple[float, ...] | None = None
    value: float = 0.0
    channels: tuple[Channel, ...] = ()
    valid_from: int | None = None
    valid_until: int | None = None
    priority: int = 0
    repeatable: bool = False
    transactional: bool = False
    schema_version: int = SCHEMA_VERSION

    @classmethod
    def of(
        cls, offer: Offer, tag_lists: dict[tuple[str, ...], tuple[str, ...]] | None = None
    ) -> OfferRecord:
        """The record of a validated offer (its values shared, not copied). ``tag_lists``:
        tag tuples already in use, to share instead of an equal copy (a catalogue of 100,000
        offers repeats a few hundred lists of tags: ~6 MB of copies); the new one joins it."""
        tags = tuple(map(intern, offer.tags))  # a few hundred tags, repeated 100,000 times
        return cls(
            offer_id=offer.offer_id,
            title=offer.title,
            item_ids=offer.item_ids,
            tags=tags if tag_lists is None else tag_lists.setdefault(tags, tags),
            vector=offer.vector,
            value=offer.value,
            channels=_CHANNEL_SETS.setdefault(offer.channels, offer.channels),
            valid_from=offer.valid_from,
            valid_until=offer.valid_until,
            priority=offer.priority,
            repeatable=offer.repeatable,
            transactional=offer.transactional,
            schema_version=offer.schema_version,
        )


def decode_item(raw: bytes | None, max_bytes: int = DEFAULT_MAX_BYTES) -> Item:
    """Decode one value of the items topic; raises :class:`~app.core.errors.EventRejected`."""
    return decode_model(Item, raw, max_bytes)


def decode_offer(raw: bytes | None, max_bytes: int = DEFAULT_MAX_BYTES) -> Offer:
    """Decode one value of the offers topic; raises :class:`~app.core.errors.EventRejected`."""
    return decode_model(Offer, raw, max_bytes)
