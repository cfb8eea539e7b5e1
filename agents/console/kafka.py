"""What the broker tells the console's Overview: the worker group's lag per partition of the
events topic, and the dead-letter topic's size and newest records (read back from its tail).

Each answer is kept ``CACHE_S`` seconds, so reloading the page does not ask the broker again;
a broker that does not answer within ``TIMEOUT_S`` gives a view with the error named.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from app.console.overview import DeadLetter, DeadLetters, KafkaView, dead_letter, lag_rows
from app.settings import Settings

log = logging.getLogger(__name__)

CACHE_S = 5.0
TIMEOUT_S = 10.0


@dataclass
class KafkaConsoleSource:
    """Lag of ``group`` on ``events_topic`` and the dead letters of ``dead_letter_topic``
    (the newest ``shown``), asked with the aiokafka clients of ``client_kwargs``."""

    client_kwargs: dict[str, Any]
    group: str
    events_topic: str
    dead_letter_topic: str
    shown: int
    clock: Callable[[], float] = time.monotonic
    _cached: tuple[float, KafkaView] | None = field(default=None, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    @classmethod
    def of(cls, settings: Settings, client_kwargs: dict[str, Any]) -> KafkaConsoleSource:
        return cls(
            client_kwargs,
            settings.app_id,
            settings.topic_user_events,
            settings.topic_dead_letters,
            settings.console_dead_letters_shown,
        )

    async def kafka_view(self) -> KafkaView:
        async with self._lock:
            now = self.clock()
            if self._cached is not None and now - self._cached[0] < CACHE_S:
                return self._cached[1]
            try:
                view = await asyncio.wait_for(self._ask(), TIMEOUT_S)
            except (TimeoutError, KafkaError, OSError) as exc:
                log.warning("console: the broker did not answer: %r", exc)
                view = KafkaView(error=f"the broker did not answer ({type(exc).__name__})")
            self._cached = (now, view)
            return view

    async def _ask(self) -> KafkaView:
        consumer = AIOKafkaConsumer(
            group_id=None, enable_auto_commit=False, request_timeout_ms=5_000, **self.client_kwargs
        )
        admin = AIOKafkaAdminClient(request_timeout_ms=5_000, **self.client_kwargs)
        try:
            await consumer.start()
            await admin.start()
            committed = await self._committed(admin)
            events = await self._partitions(consumer, self.events_topic)
            ends = await consumer.end_offsets(events) if events else {}
            starts = await consumer.beginning_offsets(events) if events else {}
            lag = lag_rows(
                {tp.partition: int(o) for tp, o in ends.items()},
                committed,
                {tp.partition: int(o) for tp, o in starts.items()},
            )
            return KafkaView(lag, await self._dead_letters(consumer))
        finally:
            await consumer.stop()
            await admin.close()

    async def _committed(self, admin: AIOKafkaAdminClient) -> dict[int, int]:
        answer = await admin.list_consumer_group_offsets(self.group)
        return {
            tp.partition: int(meta.offset)
            for tp, meta in answer.items()
            if tp.topic == self.events_topic and meta.offset >= 0
        }

    @staticmethod
    async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
        found = consumer.partitions_for_topic(topic)
        if not found:
            await consumer._client.force_metadata_update()
            found = consumer.partitions_for_topic(topic)
        return [TopicPartition(topic, p) for p in sorted(found or ())]

    async def _dead_letters(self, consumer: AIOKafkaConsumer) -> DeadLetters:
        partitions = await self._partitions(consumer, self.dead_letter_topic)
        if not partitions:
            return DeadLetters(0, ())
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        total = sum(int(ends[tp]) - int(starts[tp]) for tp in partitions)
        tail = {tp: max(int(starts[tp]), int(ends[tp]) - self.shown) for tp in partitions}
        wanted = {tp: int(ends[tp]) for tp in partitions if int(ends[tp]) > tail[tp]}
        if not wanted or self.shown == 0:
            return DeadLetters(total, ())
        consumer.assign(list(wanted))
        for tp in wanted:
            consumer.seek(tp, tail[tp])
        found: list[tuple[int, int, DeadLetter]] = []
        while wanted:
            batches = await consumer.getmany(timeout_ms=1_000, max_records=self.shown * 4)
            if not batches:
                break  # what was there is read (or the broker is slow: show what we have)
            for tp, records in batches.items():
                for r in records:
                    letter = dead_letter(r.partition, r.offset, r.headers)
                    found.append((r.timestamp, r.offset, letter))
                    if r.offset + 1 >= wanted.get(tp, 0):
                        wanted.pop(tp, None)
        found.sort(key=lambda x: (x[0], x[1]), reverse=True)  # newest first
        return DeadLetters(total, tuple(d for _, _, d in found[: self.shown]))
