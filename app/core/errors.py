"""Rejection of an input message: the one exception the decoders raise.

The ``reason_class`` is a short, stable name that goes into the dead-letter header
``nbo.error.class`` and into metric labels, so its vocabulary is closed (:class:`RejectReason`).
"""

from __future__ import annotations

from enum import StrEnum


class RejectReason(StrEnum):
    """Why an input message was rejected (the value is the dead-letter ``nbo.error.class``)."""

    EMPTY_VALUE = "EmptyValue"
    """The Kafka value is ``None`` or zero bytes."""
    VALUE_TOO_LARGE = "ValueTooLarge"
    """The value is longer than the decoder's ``max_bytes``."""
    INVALID_JSON = "InvalidJson"
    """Not UTF-8, not JSON, or JSON that is not an object."""
    SCHEMA_VIOLATION = "SchemaViolation"
    """A JSON object that breaks the contract (missing field, wrong type, bad value ...)."""
    UNSUPPORTED_SCHEMA_VERSION = "UnsupportedSchemaVersion"
    """``schema_version`` is an integer other than the one this build understands."""


class EventRejected(Exception):
    """An input message that can never be processed; the caller dead-letters it.

    ``reason_class`` is one of :class:`RejectReason` (kept as a plain ``str``);
    ``message`` is a concise human-readable explanation (at most ~500 characters, never the
    raw payload).
    """

    def __init__(self, reason_class: str, message: str) -> None:
        super().__init__(f"{reason_class}: {message}")
        self.reason_class = str(reason_class)
        self.message = message
