"""Bytes -> validated model, with every failure mapped to an :class:`EventRejected` class."""

from __future__ import annotations

import json
import re
from typing import TypeVar

import pydantic_core
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


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_pairs(pairs: list[tuple[str, object]]) -> dict[str, object]:
    found: dict[str, object] = {}
    for key, value in pairs:
        if key in found:
            raise _DuplicateKey(key)
        found[key] = value
    return found


def _keys(doc: dict[str, object]) -> int:
    """Keys of every object in a parsed JSON object (after duplicates collapsed)."""
    n = len(doc)
    for value in doc.values():
        kind = type(value)
        if kind is dict:
            n += _keys(value)  # type: ignore[arg-type]
        elif kind is list:
            n += _list_keys(value)  # type: ignore[arg-type]
    return n


def _list_keys(items: list[object]) -> int:
    n = 0
    for value in items:
        kind = type(value)
        if kind is dict:
            n += _keys(value)  # type: ignore[arg-type]
        elif kind is list:
            n += _list_keys(value)  # type: ignore[arg-type]
    return n


_WHITESPACE_AFTER_QUOTE = re.compile(rb'"[\t\n\r]')
"""A closing quote followed by whitespace (with ``" `` and an escape, what stops a key from
being spelled ``"name":`` literally)."""


def duplicate_key(raw: bytes) -> str | None:
    """A key that occurs twice in one object of ``raw`` (``None``: none, or ``raw`` is not
    JSON, which the model's own parser then reports).

    JSON parsers disagree about duplicate keys (most keep the last, some the first, some
    refuse), so a record with one could mean one thing to its producer and another here
    (RFC 7493, I-JSON: names must be unique). The fast path proves there is none with one
    parse that collapses them: when every key is spelled literally (no escape, and no
    whitespace after a closing quote), each key ends in ``":`` and nothing else does, so the
    count of ``":`` is the number of keys written; it equals the keys parsed only without
    duplicates. Otherwise the record is parsed once more, with every object's keys checked.
    """
    if b"\\" not in raw and b'" ' not in raw and not _WHITESPACE_AFTER_QUOTE.search(raw):
        try:
            doc = pydantic_core.from_json(raw)
        except ValueError:  # not JSON: the model's parser says why
            return None
        if type(doc) is dict and raw.count(b'":') == _keys(doc):
            return None
    try:
        json.loads(raw, object_pairs_hook=_unique_pairs)
    except _DuplicateKey as exc:
        return exc.key
    except ValueError:  # not JSON (or not UTF-8): the model's parser says why
        return None
    return None


def decode_model(model: type[M], raw: bytes | None, max_bytes: int = DEFAULT_MAX_BYTES) -> M:
    """Decode one Kafka value (UTF-8 JSON object) into ``model``.

    Raises :class:`EventRejected` with ``EmptyValue`` (``None`` or ``b""``), ``ValueTooLarge``
    (more than ``max_bytes`` bytes), ``InvalidJson`` (also for an object with a duplicate
    key: :func:`duplicate_key`), ``UnsupportedSchemaVersion`` or ``SchemaViolation``.
    """
    if raw is None or len(raw) == 0:
        raise EventRejected(RejectReason.EMPTY_VALUE, "value is empty")
    if len(raw) > max_bytes:
        raise EventRejected(
            RejectReason.VALUE_TOO_LARGE, f"value is {len(raw)} bytes, limit is {max_bytes}"
        )
    try:
        decoded = model.model_validate_json(raw)
    except ValidationError as exc:
        raise classify_validation_error(exc) from None
    repeated = duplicate_key(raw)
    if repeated is not None:
        raise EventRejected(
            RejectReason.INVALID_JSON, _truncate(f"duplicate key {repeated!r} in one object")
        )
    return decoded
