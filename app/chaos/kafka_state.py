"""What the broker says about a scenario's topic: end offsets, the group's committed offsets,
the records of a topic. Every call answers ``None`` (or retries) while the broker is away."""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

log = logging.getLogger(__name__)

Offsets = dict[int, int]


async def end_offsets(bootstrap: str, topic: str) -> Offsets | None:
    """Partition -> log end offset of ``topic``; ``None`` when the broker does not answer."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                request_timeout_ms=5_000)  # fmt: skip
    try:
        await asyncio.wait_for(consumer.start(), 10)
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await asyncio.wait_for(consumer._client.force_metadata_update(), 5)
            partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            return None
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        ends = await asyncio.wait_for(consumer.end_offsets(tps), 10)
        return {tp.partition: int(offset) for tp, offset in ends.items()}
    except (TimeoutError, KafkaError, OSError) as exc:
        log.debug("end offsets of %s unavailable: %s", topic, exc)
        return None
    finally:
        await consumer.stop()


async def committed_offsets(bootstrap: str, group: str, topic: str) -> Offsets | None:
    """Partition -> offset ``group`` committed on ``topic`` (absent: none yet); ``None`` when
    the broker does not answer."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5_000)
    try:
        await asyncio.wait_for(admin.start(), 10)
        answer = await asyncio.wait_for(admin.list_consumer_group_offsets(group), 10)
        return {
            tp.partition: int(meta.offset)
            for tp, meta in answer.items()
            if tp.topic == topic and meta.offset >= 0
        }
    except (TimeoutError, KafkaError, OSError) as exc:
        log.debug("committed offsets of %s unavailable: %s", group, exc)
        return None
    finally:
        await admin.close()


async def wait_end_offsets(bootstrap: str, topic: str, timeout_s: float) -> Offsets | None:
    """:func:`end_offsets`, asked again until the broker answers or ``timeout_s`` passed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ends = await end_offsets(bootstrap, topic)
        if ends is not None:
            return ends
        await asyncio.sleep(0.5)
    return None


async def wait_committed(
    bootstrap: str, group: str, topic: str, target: Offsets, timeout_s: float
) -> float | None:
    """Seconds until ``group`` has committed at least ``target`` on every partition (its lag
    for everything up to ``target`` is 0); ``None`` if not within ``timeout_s``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        committed = await committed_offsets(bootstrap, group, topic)
        if committed is not None and all(
            committed.get(p, 0) >= end for p, end in target.items() if end > 0
        ):
            return time.monotonic() - started
        await asyncio.sleep(0.25)
    return None


async def read_all(
    bootstrap: str, topic: str, timeout_s: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic`` up to its current end."""
    ends = await wait_end_offsets(bootstrap, topic, timeout_s)
    if not ends or not any(ends.values()):
        return []
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
        enable_auto_commit=False, max_partition_fetch_bytes=4 * 1024 * 1024,
    )  # fmt: skip
    out: list[ConsumerRecord[bytes, bytes]] = []
    await consumer.start()
    try:
        want = sum(ends.values())
        deadline = time.monotonic() + timeout_s
        while len(out) < want and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=300)).values():
                out.extend(records)
    finally:
        await consumer.stop()
    return out
