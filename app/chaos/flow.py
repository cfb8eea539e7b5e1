"""The chaos workload: sequence-numbered events at a steady rate, sent until acknowledged.

Every event has a known id (``<run>-<user>-<seq>``) and user, so the run knows what each user
must end up with. A send that fails (the broker is down, a timeout) is repeated until the broker
acknowledges it; an event that reached the log twice that way carries the same id, which the
engine deduplicates. While the broker is away the events due pile up and are sent in a burst
when it is back, as a producer's buffer would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from app.chaos.ledger import Produced

log = logging.getLogger(__name__)

ITEMS = 20
"""Catalogue items the events are about (``i0`` ... ``i19``)."""
MAX_SEND = 2_000
"""Most events sent in one go (a burst after an outage goes out in pieces)."""


def event_record(run: str, user: str, seq: int, item: int) -> tuple[bytes, bytes]:
    """One workload event: a ``view`` of item ``i<item>`` by ``user``, dated now."""
    body = {"event_id": f"{run}-{user}-{seq}", "user_id": user, "type": "view",
            "item_id": f"i{item % ITEMS}", "ts": int(time.time() * 1000)}  # fmt: skip
    return user.encode(), json.dumps(body, separators=(",", ":")).encode()


async def start_producer(bootstrap: str, stop: asyncio.Event | None = None) -> AIOKafkaProducer:
    """A started producer (acks from every in-sync replica), retried while the broker is away."""
    while True:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", linger_ms=5, request_timeout_ms=10_000
        )
        try:
            await producer.start()
            return producer
        except (KafkaError, OSError) as exc:
            await producer.stop()
            if stop is not None and stop.is_set():
                raise
            log.info("producer cannot start yet (%s); retrying", exc)
            await asyncio.sleep(1.0)


async def send_acknowledged(
    bootstrap: str,
    producer: AIOKafkaProducer,
    topic: str,
    records: Sequence[tuple[bytes, bytes]],
) -> AIOKafkaProducer:
    """Send ``records`` until the broker has acknowledged every one; returns the producer to
    use next (a new one when the old one kept failing)."""
    pending = list(records)
    failures = 0
    while pending:
        futures: list[Any] = []
        try:
            for key, value in pending:
                futures.append(await producer.send(topic, value, key))
        except (KafkaError, OSError) as exc:
            log.info("send failed (%s); %d records to send again", exc, len(pending))
        results = await asyncio.gather(*futures, return_exceptions=True)
        done = {n for n, result in enumerate(results) if not isinstance(result, BaseException)}
        pending = [record for n, record in enumerate(pending) if n not in done]
        if pending:
            failures += 1
            if failures % 5 == 0:  # a producer that keeps failing: start afresh
                await producer.stop()
                producer = await start_producer(bootstrap)
            await asyncio.sleep(0.5)
    return producer


@dataclass
class Flow:
    """Events for ``users`` at ``rate`` per second on ``topic`` until :meth:`stop`."""

    bootstrap: str
    topic: str
    run: str
    users: Sequence[str]
    rate: float
    produced: Produced

    def __post_init__(self) -> None:
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._seq = 0

    def start(self) -> Flow:
        self._task = asyncio.create_task(self._produce())
        return self

    @property
    def sent(self) -> int:
        """Events handed to the producer so far."""
        return self._seq

    async def stop(self, timeout_s: float = 300.0) -> bool:
        """Stop producing; returns once everything sent so far is acknowledged (``True``), or
        after ``timeout_s`` with the sending cancelled (``False``)."""
        self._stop.set()
        if self._task is None:
            return True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
        except TimeoutError:
            await self.cancel()
            return False
        return True

    async def cancel(self) -> None:
        """Stop producing now, without waiting for acknowledgements (after a failure)."""
        self._stop.set()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _next(self) -> tuple[str, tuple[bytes, bytes]]:
        n = self._seq
        self._seq += 1
        user = self.users[n % len(self.users)]
        return user, event_record(self.run, user, n, n // len(self.users))

    async def _produce(self) -> None:
        producer = await start_producer(self.bootstrap)
        loop = asyncio.get_running_loop()
        started, sent = loop.time(), 0
        try:
            while not self._stop.is_set():
                due = min(int((loop.time() - started) * self.rate) - sent, MAX_SEND)
                if due <= 0:
                    await asyncio.sleep(0.01)
                    continue
                batch = [self._next() for _ in range(due)]
                producer = await send_acknowledged(
                    self.bootstrap, producer, self.topic, [record for _, record in batch]
                )
                for user, (_, value) in batch:
                    self.produced.add(user, json.loads(value)["event_id"])
                sent += due
        finally:
            await producer.stop()
