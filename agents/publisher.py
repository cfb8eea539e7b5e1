"""The :class:`app.ports.Publisher` adapter on faust's producer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from app.ports import OutboundRecord


class FaustPublisher:
    """Sends records with the app's producer and waits until the broker acknowledged them.

    Using faust's own producer keeps its at-least-once rule: the producer is flushed before
    the consumer's offsets are committed.
    """

    def __init__(self, app: Any) -> None:
        self._app = app

    async def publish(self, records: Sequence[OutboundRecord]) -> None:
        producer = self._app.producer
        pending = [
            await producer.send(r.topic, r.key, r.value, None, None, list(r.headers))
            for r in records
        ]
        await asyncio.gather(*pending)
