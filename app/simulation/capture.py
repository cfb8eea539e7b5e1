"""A publisher that keeps what the pipeline publishes, in memory, and sends nothing."""

from __future__ import annotations

from collections.abc import Sequence

from app.ports import OutboundRecord


class CapturingPublisher:
    """Keeps every published record (the simulator reads the decision records from it)."""

    def __init__(self) -> None:
        self.records: list[OutboundRecord] = []

    async def publish(self, records: Sequence[OutboundRecord]) -> None:
        self.records.extend(records)

    def on(self, topic: str) -> list[OutboundRecord]:
        """The records published to ``topic``, in order."""
        return [r for r in self.records if r.topic == topic]
