"""Consent: the ``user-consent`` record (compacted topic keyed by user_id) and its rules.

* A channel is usable only with consent: the record's explicit ``true``/``false`` for that
  channel, else :class:`ConsentDefaults` (email, push and sms need an opt-in; in_app and web
  are allowed unless opted out). Without any record the defaults apply.
* ``objection: true`` (GDPR art. 21, objection to profiling) means no personalised offers
  at all, on any channel, transactional or not: see :func:`profiling_allowed`.
* The order of the ``channels`` mapping is the user's stated preference (its ``true``
  entries, first = preferred); it breaks ties of the channel choice, so keep the order when
  storing the record.
* Tolerant reader: unknown fields and unknown channel names are ignored (a channel this build
  does not know can never be used anyway); known channels need JSON booleans.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
    model_validator,
)

from app.core.decoding import DEFAULT_MAX_BYTES, decode_model
from app.core.enums import Channel, require_complete
from app.core.fields import SCHEMA_VERSION, SchemaVersion, Timestamp, UserId

_CHANNEL_NAMES = frozenset(c.value for c in Channel)

TzName = Annotated[str, StringConstraints(strict=True, max_length=64)]
"""An IANA time zone name as sent; an unknown name falls back at use (never rejected)."""


class ConsentRecord(BaseModel):
    """The consent of one user, schema version 1 (the value of the ``user-consent`` topic).

    ``ts`` (RFC 3339 with offset or epoch ms) is stored as :attr:`ts_ms`; a newer ``ts``
    supersedes (:func:`supersedes`).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: SchemaVersion = SCHEMA_VERSION
    user_id: UserId
    channels: dict[Channel, StrictBool]
    """Explicit consent per channel, in the user's order of preference."""
    objection: StrictBool = False
    """Objection to profiling: no personalised offers, the profile is deleted."""
    tz: TzName | None = None
    """The user's IANA time zone (quiet hours), e.g. ``Europe/London``."""
    ts_ms: Timestamp = Field(validation_alias="ts", serialization_alias="ts")
    source: Annotated[str, StringConstraints(strict=True, max_length=256)] | None = None

    @field_validator("channels", mode="before")
    @classmethod
    def _known_channels(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if k in _CHANNEL_NAMES}
        return value

    def to_json_bytes(self) -> bytes:
        """Compact wire JSON (``ts`` as epoch ms, ``None`` fields omitted, channel order kept)."""
        return self.model_dump_json(by_alias=True, exclude_none=True).encode("utf-8")


class ConsentDefaults(BaseModel):
    """Whether a channel the consent record does not mention may be used.

    Defaults: email, push and sms need an opt-in (``false``); in_app and web are allowed
    unless opted out (``true``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    email: StrictBool = False
    push: StrictBool = False
    sms: StrictBool = False
    in_app: StrictBool = True
    web: StrictBool = True

    @model_validator(mode="after")
    def _complete(self) -> Self:
        type(self).check_against(Channel)
        return self

    @classmethod
    def check_against(cls, channels: type[StrEnum]) -> None:
        """Raise ``ValueError`` unless every one of ``channels`` has a default here."""
        require_complete(channels, cls.model_fields, "consent_defaults")

    def allows(self, channel: Channel) -> bool:
        """The default of ``channel``."""
        return bool(getattr(self, channel.value))


def decode_consent(raw: bytes | None, max_bytes: int = DEFAULT_MAX_BYTES) -> ConsentRecord:
    """Decode one value of ``user-consent``; raises :class:`~app.core.errors.EventRejected`.

    A tombstone (``None``) is the caller's business (delete the stored consent): this
    rejects it as ``EmptyValue`` like the other decoders.
    """
    return decode_model(ConsentRecord, raw, max_bytes)


def supersedes(new: ConsentRecord, old: ConsentRecord | None) -> bool:
    """Whether ``new`` replaces ``old``: no old record, or ``new.ts`` is not older."""
    return old is None or new.ts_ms >= old.ts_ms


def profiling_allowed(consent: ConsentRecord | None) -> bool:
    """False when the user objected to profiling: delete the profile, apply no events, send
    no personalised offer. No record means no objection."""
    return consent is None or not consent.objection


def channel_consented(
    consent: ConsentRecord | None, channel: Channel, defaults: ConsentDefaults
) -> bool:
    """The explicit consent of ``channel`` if the record states one, else the default.

    Ignores ``objection`` (checked separately by :func:`profiling_allowed`).
    """
    if consent is not None and channel in consent.channels:
        return consent.channels[channel]
    return defaults.allows(channel)


def consented_channels(
    consent: ConsentRecord | None, defaults: ConsentDefaults
) -> frozenset[Channel]:
    """Every channel :func:`channel_consented` allows."""
    if consent is None or not consent.channels:
        return _by_default(defaults)
    return frozenset(c for c in Channel if channel_consented(consent, c, defaults))


@lru_cache(maxsize=16)
def _by_default(defaults: ConsentDefaults) -> frozenset[Channel]:
    """The channels ``defaults`` allow (a record stating no channel gets exactly these)."""
    return frozenset(c for c in Channel if defaults.allows(c))


def preference_order(
    consent: ConsentRecord | None, default_order: Iterable[Channel]
) -> tuple[Channel, ...]:
    """All channels, most preferred first: the record's ``true`` channels in their stated
    order, then the rest in ``default_order``, then any channel missing from both."""
    stated = [c for c, ok in consent.channels.items() if ok] if consent is not None else []
    return tuple(dict.fromkeys([*stated, *default_order, *Channel]))
