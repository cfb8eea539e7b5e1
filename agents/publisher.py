"""The :class:`app.ports.Publisher` adapter on faust's producer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka.errors import (
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)

from app.ports import OutboundRecord, PublishUnavailable

TOO_LARGE = (MessageSizeTooLargeError, RecordTooLargeError, RecordListTooLargeError)
"""Kafka errors about one record itself: publishing it again can never succeed."""


class FaustPublisher:
    """Sends records with the app's producer and waits until the broker acknowledged them.

    Using faust's own producer keeps its at-least-once rule: the producer is flushed before
    the consumer's offsets are committed.
    """

    def __init__(self, app: Any) -> None:
        self._app = app

    async def publish(self, records: Sequence[OutboundRecord]) -> None:
        """Send ``records`` and wait for every acknowledgement. A record the broker can never
        take (too large) raises as it is; any other broker error raises
        :class:`~app.ports.PublishUnavailable` (the caller retries)."""
        producer = self._app.producer
        try:
            pending = [
                await producer.send(r.topic, r.key, r.value, None, None, list(r.headers))
                for r in records
            ]
            await asyncio.gather(*pending)
        except TOO_LARGE:
            raise
        except KafkaError as exc:
            raise PublishUnavailable(f"the broker did not take the records: {exc!r}") from exc
