"""What the agents share about their streams: raw records out of faust events, and a batch
retried until it is durable.

Every agent follows the same rules: one agent per process (``concurrency=1``: faust-streaming's
offset commit is unsafe with more), batches through ``stream.take_events`` (the user-events
agent: whole fetches, :mod:`agents.fetches`), raw bytes decoded inside the loop, and a batch
that fails because Redis or the broker is unavailable retried with capped exponential backoff
(0.1 s doubling to 5 s) before it is acknowledged, so nothing is lost while a dependency is
down. A record that fails for good is isolated and dead-lettered by
the handler (:mod:`app.pipeline.isolation`), so it never stalls its partition.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from app.core.errors import is_transient
from app.pipeline.records import InboundRecord

log = logging.getLogger(__name__)

T = TypeVar("T")

BACKOFF_START_S = 0.1
BACKOFF_MAX_S = 5.0


def inbound(events: Sequence[Any]) -> list[InboundRecord]:
    """faust events -> :class:`InboundRecord` (raw key and value, where they came from)."""
    return [
        InboundRecord(
            topic=e.message.topic,
            partition=e.message.partition,
            offset=e.message.offset,
            key=e.message.key,
            value=e.message.value,
        )
        for e in events
    ]


def positions(records: Sequence[InboundRecord]) -> dict[str, str]:
    """Log fields naming the records of a batch: topic, partitions and offset ranges."""
    spans: dict[int, tuple[int, int]] = {}
    for r in records:
        low, high = spans.get(r.partition, (r.offset, r.offset))
        spans[r.partition] = (min(low, r.offset), max(high, r.offset))
    return {
        "topic": records[0].topic if records else "",
        "offsets": ",".join(f"{p}:{lo}-{hi}" for p, (lo, hi) in sorted(spans.items())),
    }


async def until_done(
    step: Callable[[], Awaitable[T]],
    what: str,
    on_retry: Callable[[], None] = lambda: None,
    extra: Mapping[str, str] | None = None,
) -> T:
    """Run ``step`` until it returns, retrying a transient failure (Redis or the broker
    unavailable, :func:`app.core.errors.is_transient`) with capped backoff: the caller has not
    acknowledged its input, so nothing is lost while a dependency is down. Any other failure
    is raised at once: ``step`` isolates the records that fail for good, so one that gets
    here is a defect of the caller, never a reason to stall the stream.
    ``extra``: log fields of the warning each retry logs."""
    delay = BACKOFF_START_S
    while True:
        try:
            return await step()
        except Exception as exc:
            if not is_transient(exc):
                raise
            on_retry()
            log.warning(
                "%s failed (%s: %s); retrying in %.1f s",
                what,
                type(exc).__name__,
                exc,
                delay,
                extra=extra,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)
