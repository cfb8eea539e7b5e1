"""Bytes -> validated model, with every failure mapped to an :class:`EventRejected` class."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from app.core.errors import EventRejected, RejectReason

DEFAULT_MAX_BYTES = 65_536
"""Default size limit of one Kafka value, bytes."""
MAX_MESSAGE_CHARS = 500
"""Upper bound of a rejection message, characters."""

M = TypeVar("M", bound=BaseModel)

_NOT_AN_OBJECT = frozenset({"model_type", "model_attributes_type", "dict_type"})


def _truncate(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def summarise_validation_error(exc: ValidationError) -> str:
    """One line listing ``location: error`` pairs, at most :data:`MAX_MESSAGE_CHARS` chars.

    Input values are never echoed (they may be hostile or personal data).
    """
    parts: list[str] = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return _truncate("; ".join(parts))


def classify_validation_error(exc: ValidationError) -> EventRejected:
    """Map a pydantic error from ``model_validate_json`` to the rejection to raise.

    Precedence: invalid JSON, not an object, unsupported schema version, schema violation.
    """
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    for err in errors:
        if err["type"] == "json_invalid":
            return EventRejected(RejectReason.INVALID_JSON, _truncate(err["msg"]))
    for err in errors:
        if not err["loc"] and err["type"] in _NOT_AN_OBJECT:
            return EventRejected(RejectReason.INVALID_JSON, "value is not a JSON object")
    for err in errors:
        if err["type"] == "unsupported_schema_version":
            return EventRejected(RejectReason.UNSUPPORTED_SCHEMA_VERSION, _truncate(err["msg"]))
    return EventRejected(RejectReason.SCHEMA_VIOLATION, summarise_validation_error(exc))


def decode_model(model: type[M], raw: bytes | None, max_bytes: int = DEFAULT_MAX_BYTES) -> M:
    """Decode one Kafka value (UTF-8 JSON object) into ``model``.

    Raises :class:`EventRejected` with ``EmptyValue`` (``None`` or ``b""``), ``ValueTooLarge``
    (more than ``max_bytes`` bytes), ``InvalidJson``, ``UnsupportedSchemaVersion`` or
    ``SchemaViolation``.
    """
    if raw is None or len(raw) == 0:
        raise EventRejected(RejectReason.EMPTY_VALUE, "value is empty")
    if len(raw) > max_bytes:
        raise EventRejected(
            RejectReason.VALUE_TOO_LARGE, f"value is {len(raw)} bytes, limit is {max_bytes}"
        )
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise classify_validation_error(exc) from None
