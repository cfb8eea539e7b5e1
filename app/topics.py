"""Creates the worker's topics before it joins its consumer group (when declaration is on).

Declaring first matters: a consumer that subscribes to a missing topic would get no partitions
until its next metadata refresh. Existing topics are left as they are (an operator such as
Strimzi may manage them: set ``NBO_DECLARE_TOPICS=false``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app.settings import Settings

log = logging.getLogger(__name__)

COMPACTED = {"cleanup.policy": "compact"}


@dataclass(frozen=True)
class TopicSpec:
    """A topic the worker needs: name, partitions and configs."""

    name: str
    partitions: int
    config: dict[str, str]


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic of the worker with its defaults (catalogues and neighbours compacted)."""
    n = settings.user_events_partitions
    return [
        TopicSpec(settings.topic_user_events, n, {}),
        TopicSpec(settings.topic_item_catalog, 1, COMPACTED),
        TopicSpec(settings.topic_offer_catalog, 1, COMPACTED),
        TopicSpec(settings.topic_item_neighbours, 1, COMPACTED),
        TopicSpec(settings.topic_offers, n, {}),
        TopicSpec(settings.topic_dead_letters, n, {}),
        # consumed in the consumer group next to user-events: same partition count
        TopicSpec(settings.topic_user_consent, n, COMPACTED),
        TopicSpec(settings.topic_privacy_requests, n, {}),
        TopicSpec(settings.topic_privacy_audit, n, {}),
        TopicSpec(settings.topic_decisions, n, {}),
    ]


async def ensure_topics(
    kafka: str | dict[str, Any], specs: list[TopicSpec], replication_factor: int = 1
) -> list[str]:
    """Create the missing topics of ``specs``; returns the names created.

    ``kafka``: bootstrap servers, or aiokafka client options
    (:func:`app.connections.kafka_client_kwargs`).
    """
    kwargs = {"bootstrap_servers": kafka} if isinstance(kafka, str) else kafka
    admin = AIOKafkaAdminClient(request_timeout_ms=15_000, **kwargs)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if missing:
            await admin.create_topics(
                [
                    NewTopic(
                        s.name,
                        num_partitions=s.partitions,
                        replication_factor=replication_factor,
                        topic_configs=s.config,
                    )
                    for s in missing
                ]
            )
            log.info("created topics: %s", ", ".join(s.name for s in missing))
            await _wait_for_leaders(admin, [s.name for s in missing])
            await _wait_until_served(kwargs, missing)
        return [s.name for s in missing]
    finally:
        await admin.close()


async def delete_topics_with_prefix(kafka: str | dict[str, Any], prefix: str) -> list[str]:
    """Delete every topic whose name starts with ``prefix`` (a benchmark's or chaos run's
    own topics); returns the names deleted. ``kafka`` as for :func:`ensure_topics`."""
    if not prefix:
        raise ValueError("refusing to delete every topic: give a prefix")
    kwargs = {"bootstrap_servers": kafka} if isinstance(kafka, str) else kafka
    admin = AIOKafkaAdminClient(request_timeout_ms=30_000, **kwargs)
    await admin.start()
    try:
        doomed = sorted(t for t in await admin.list_topics() if t.startswith(prefix))
        if doomed:
            await admin.delete_topics(doomed)
            log.info("deleted topics: %s", ", ".join(doomed))
        return doomed
    finally:
        await admin.close()


async def _wait_for_leaders(
    admin: AIOKafkaAdminClient, topics: list[str], timeout_s: float = 15.0
) -> None:
    """Wait until every partition of ``topics`` has a leader, so the first produce does not
    bounce off a partition that is still electing one."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        described = await admin.describe_topics(topics)
        partitions = [p for t in described for p in t.get("partitions", [])]
        ready = all(t.get("error_code", 0) == 0 for t in described) and all(
            p.get("leader", -1) >= 0 for p in partitions
        )
        if ready and partitions:
            return
        await asyncio.sleep(0.1)
    log.warning("some partitions of %s have no leader after %.0f s", topics, timeout_s)


async def _wait_until_served(
    kafka: dict[str, Any], specs: list[TopicSpec], timeout_s: float = 15.0
) -> None:
    """Wait until the leader of every partition of ``specs`` answers for it.

    The metadata names a leader a little before that broker has taken the partition on: a
    produce in between is answered ``NotLeaderForPartition`` (retried, but logged as a
    warning by the producer). Listing the end offsets goes to the same leaders, and the
    consumer retries that error quietly until each leader serves its partitions.
    """
    partitions = [TopicPartition(s.name, p) for s in specs for p in range(s.partitions)]
    consumer = AIOKafkaConsumer(
        group_id=None,
        enable_auto_commit=False,
        request_timeout_ms=int(timeout_s * 1000),
        **kafka,
    )
    await consumer.start()
    try:
        await consumer.end_offsets(partitions)
    except Exception as exc:  # readiness is a courtesy: the producer retries anyway
        log.warning("the leaders of %s did not answer within %.0f s: %s", specs, timeout_s, exc)
    finally:
        await consumer.stop()
