"""Reusable field types of the wire contracts (validation rules live here, once).

Numbers are strict: they must be JSON numbers (``"4"`` and ``true`` are rejected), strings
must be JSON strings. Floats must be finite (the models set ``allow_inf_nan=False``).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints
from pydantic_core import PydanticCustomError

from app.core.timestamps import parse_timestamp

SCHEMA_VERSION = 1
"""The only ``schema_version`` of every contract this build reads and writes."""

USER_ID_PATTERN = r"^[A-Za-z0-9._:@-]{1,128}$"
"""A user id becomes part of Redis keys: 1-128 ASCII letters, digits and ``. _ : @ -``."""

Identifier = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=128)]
"""An event, item or offer id: any 1-128 characters (no charset rule)."""

UserId = Annotated[str, StringConstraints(strict=True, pattern=USER_ID_PATTERN)]
"""A user id, see :data:`USER_ID_PATTERN`."""

MAX_TAG_CHARS = 100
"""Longest tag, characters."""
MAX_TAGS = 32
"""Most tags of one event, item or offer."""
MAX_MONEY = 1e9
"""Largest amount of money (an offer's value, an item's price, an event's value): one absurd
value would otherwise shrink every other offer's normalised value part to nothing."""

Tag = Annotated[str, StringConstraints(strict=True, max_length=MAX_TAG_CHARS)]
"""A free-form tag of at most :data:`MAX_TAG_CHARS` characters; normalised (stripped,
lower-cased) when hashed, see ``vectors``."""

Tags = Annotated[tuple[Tag, ...], Field(max_length=MAX_TAGS)]
"""At most :data:`MAX_TAGS` tags."""

Money = Annotated[float, Field(strict=True, ge=0.0, le=MAX_MONEY)]
"""A non-negative finite amount of money up to :data:`MAX_MONEY` (JSON number; integers
accepted)."""

Timestamp = Annotated[int, BeforeValidator(parse_timestamp)]
"""RFC 3339 string or integer epoch ms on the wire, epoch ms UTC once validated."""

VectorValues = Annotated[
    tuple[Annotated[float, Field(strict=True)], ...], Field(min_length=1, max_length=4096)
]
"""An explicit embedding (1-4096 finite floats); its length is checked against the
catalogue's dimension by the catalogue, not by the model."""


def _check_schema_version(version: int) -> int:
    if version != SCHEMA_VERSION:
        raise PydanticCustomError(
            "unsupported_schema_version",
            "schema_version {version} is not supported (this build reads {supported})",
            {"version": version, "supported": SCHEMA_VERSION},
        )
    return version


SchemaVersion = Annotated[int, Field(strict=True), AfterValidator(_check_schema_version)]
"""An integer equal to :data:`SCHEMA_VERSION`; another integer is reported with the error
type ``unsupported_schema_version`` (-> ``UnsupportedSchemaVersion``)."""
