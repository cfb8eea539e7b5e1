"""A publisher twin that records what the pipeline publishes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from app.ports import OutboundRecord


class RecordingPublisher:
    """Keeps every published record; ``fail = True`` makes publishing raise, as a broker that
    is gone would."""

    def __init__(self) -> None:
        self.records: list[OutboundRecord] = []
        self.fail = False

    async def publish(self, records: Sequence[OutboundRecord]) -> None:
        if self.fail:
            raise ConnectionError("broker gone")
        self.records.extend(records)

    def on(self, topic: str) -> list[OutboundRecord]:
        """The records published to ``topic``, in order."""
        return [r for r in self.records if r.topic == topic]

    def values(self, topic: str) -> list[dict[str, Any]]:
        """The JSON values published to ``topic``, in order."""
        return [json.loads(r.value or b"") for r in self.on(topic)]
