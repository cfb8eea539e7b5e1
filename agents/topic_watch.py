"""Learns the events topic's Kafka topic id at every partition assignment (the first included).

The processor compares it with the id stored with each user's offsets, so a topic deleted and
created again under the same name does not make its new events look already applied (see
:mod:`app.topic_identity` and :mod:`app.core.profile`). A changed id is logged and counted
(``nbo_topic_id_changes_total``). When the broker cannot tell the id (older than Kafka 2.8) or
the request fails, the last known id stays in force and offsets are compared as before.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from app.connections import kafka_client_kwargs
from app.topic_identity import TopicIdUnavailable, fetch_topic_ids

if TYPE_CHECKING:
    from agents.worker import Worker

log = logging.getLogger(__name__)


async def learn_topic_id(worker: Worker) -> None:
    """Ask the broker for the events topic's id and give it to the processor."""
    topic = worker.settings.topic_user_events
    try:
        ids = await fetch_topic_ids(kafka_client_kwargs(worker.settings), [topic])
    except TopicIdUnavailable as exc:
        log.warning("the topic id of %s is unknown; the last one known stays: %s", topic, exc)
        return
    new = ids.get(topic)
    if new is None:
        log.warning("the broker gave no topic id for %s", topic)
        return
    old = worker.processor.topic_id(topic)
    if old and old != new:
        worker.metrics.topic_id_changes.inc()
        log.warning(
            "%s was recreated (topic id %s, was %s): offsets stored for the old topic no longer "
            "count; events are deduplicated by their recent ids only",
            topic,
            new,
            old,
        )
    elif not old:
        log.info("%s has topic id %s", topic, new)
    worker.processor.set_topic_id(topic, new)
