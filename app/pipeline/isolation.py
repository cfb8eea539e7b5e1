"""A record that makes processing fail cannot stall its partition.

:func:`process_isolating` runs a batch; when it fails with a permanent error (see
:mod:`app.core.errors`: anything but a :class:`~app.core.errors.TransientError`), it bisects
the batch, processing each half on its own, until the records that fail on their own are
found. Each of them goes to the dead-letter topic with the exception's class and message; the
rest of the batch is processed as usual, in order, and the batch can be acknowledged.

A transient error is raised as it is, at any depth: the caller retries the whole batch later
(the halves already processed are recognised then as applied: processing is idempotent).
Isolating a record costs about ``2 log2(n)`` extra attempts for a batch of ``n``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from app.core.errors import is_transient
from app.pipeline.outbound import Outbound
from app.pipeline.records import InboundRecord
from app.pipeline.stats import BatchStats
from app.ports import Publisher

log = logging.getLogger(__name__)

Process = Callable[[Sequence[InboundRecord]], Awaitable[BatchStats]]


async def process_isolating(
    process: Process,
    records: Sequence[InboundRecord],
    publisher: Publisher,
    outbound: Outbound,
    clock_ms: Callable[[], int],
) -> BatchStats:
    """Process ``records``, isolating and dead-lettering those that fail on their own (see
    module doc); returns what the batch did, the isolated records counted as dead letters
    under their exception's class."""
    total = BatchStats()
    poison: list[tuple[InboundRecord, Exception]] = []

    async def run(part: Sequence[InboundRecord]) -> None:
        try:
            total.merge(await process(part))
        except Exception as exc:
            if is_transient(exc):
                raise
            if len(part) == 1:
                poison.append((part[0], exc))
                return
            middle = len(part) // 2
            await run(part[:middle])
            await run(part[middle:])

    await run(records)
    if poison:
        now = clock_ms()
        letters = []
        for record, exc in poison:
            log.error(
                "dead-lettering a record that makes processing fail: %s: %s",
                type(exc).__name__,
                exc,
                extra={"topic": record.topic, "partition": record.partition,
                       "offset": record.offset},
                exc_info=exc,
            )  # fmt: skip
            reason = type(exc).__name__
            letters.append(outbound.dead_letter(record, reason, str(exc) or reason, now))
            total.reasons[reason] = total.reasons.get(reason, 0) + 1
            total.dead_lettered += 1
            total.received += 1
        await publisher.publish(letters)
    return total
