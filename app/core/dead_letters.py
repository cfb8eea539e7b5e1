"""Kafka headers of a dead-lettered message (the original value is forwarded unchanged)."""

from __future__ import annotations

from app.core.timestamps import format_rfc3339_ms

HEADER_ERROR_CLASS = "nbo.error.class"
HEADER_ERROR_MESSAGE = "nbo.error.message"
HEADER_ORIGINAL_TOPIC = "nbo.original.topic"
HEADER_ORIGINAL_PARTITION = "nbo.original.partition"
HEADER_ORIGINAL_OFFSET = "nbo.original.offset"
HEADER_FAILED_AT = "nbo.failed_at"
MAX_ERROR_MESSAGE_CHARS = 1000
"""The error message header is truncated to this many characters before UTF-8 encoding."""


def dead_letter_headers(
    reason_class: str,
    message: str,
    topic: str,
    partition: int,
    offset: int,
    failed_at_ms: int,
) -> list[tuple[str, bytes]]:
    """Headers, in this order: error class, error message (<= 1000 chars), original topic,
    partition and offset (decimal), and failure time (RFC 3339 UTC, ms), all UTF-8."""
    return [
        (HEADER_ERROR_CLASS, str(reason_class).encode("utf-8")),
        (HEADER_ERROR_MESSAGE, message[:MAX_ERROR_MESSAGE_CHARS].encode("utf-8", "replace")),
        (HEADER_ORIGINAL_TOPIC, topic.encode("utf-8")),
        (HEADER_ORIGINAL_PARTITION, str(partition).encode("ascii")),
        (HEADER_ORIGINAL_OFFSET, str(offset).encode("ascii")),
        (HEADER_FAILED_AT, format_rfc3339_ms(failed_at_ms).encode("ascii")),
    ]
