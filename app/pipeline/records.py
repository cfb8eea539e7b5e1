"""The inbound record the pipeline works on, independent of the Kafka client."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InboundRecord:
    """One consumed message: where it came from and its raw key and value."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
