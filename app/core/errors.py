"""nbo-stream's one exception hierarchy, and the rejection of an input message.

Every exception the project raises on purpose descends from :class:`NboError`, in one of two
kinds that decide what the stream does with the input that met it:

* :class:`TransientError`: a dependency (Redis, the broker) is unavailable or slow. The same
  input is retried, with capped backoff, and never acknowledged before it succeeds.
* :class:`PermanentError`: this input can never be processed. It is isolated, dead-lettered
  with its reason, and the stream moves on. :class:`EventRejected` (the decoders) is one.

An exception of neither kind (a programming error met by one record) counts as permanent:
the record that provokes it is isolated and dead-lettered with the exception's class and
message, so it cannot stall its partition. Adapters turn their clients' "unavailable"
errors into :class:`TransientError`.

The ``reason_class`` of a rejection is a short, stable name that goes into the dead-letter
header ``nbo.error.class`` and into metric labels, so its vocabulary is closed
(:class:`RejectReason`).
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
    FUTURE_TIMESTAMP = "FutureTimestamp"
    """Dated further ahead of the worker's clock than the allowed skew: a wrong clock, whose
    record would otherwise freeze profiles and statistics, or lock consent, until that date."""


class NboError(Exception):
    """The root of every exception nbo-stream raises on purpose."""


class TransientError(NboError):
    """A dependency is unavailable or too slow now: retry the same input later."""


class PermanentError(NboError):
    """This input can never be processed: isolate it, dead-letter it, move on."""


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` means "retry the same input later" (a :class:`TransientError`, or the
    standard library's connection and timeout errors); anything else is permanent."""
    return isinstance(exc, TransientError | ConnectionError | TimeoutError)


class EventRejected(PermanentError):
    """An input message that can never be processed; the caller dead-letters it.

    ``reason_class`` is one of :class:`RejectReason` (kept as a plain ``str``);
    ``message`` is a concise human-readable explanation (at most ~500 characters, never the
    raw payload).
    """

    def __init__(self, reason_class: str, message: str) -> None:
        super().__init__(f"{reason_class}: {message}")
        self.reason_class = str(reason_class)
        self.message = message
