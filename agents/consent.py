"""The user-consent agent: applies consent records to the users' stored state.

The handler is :mod:`app.pipeline.consent`; this registers it on the worker's faust app.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

from agents.publisher import FaustPublisher
from agents.stream import inbound, until_done
from agents.user_admin import build_user_admin
from app.pipeline.consent import ConsentHandler
from app.ports import Publisher, UserAdmin

if TYPE_CHECKING:
    from agents.worker import Worker

log = logging.getLogger(__name__)

AGENT_NAME = "nbo.apply-consent"


def register_consent_agent(
    worker: Worker, admin: UserAdmin | None = None, publisher: Publisher | None = None
) -> ConsentHandler:
    """Register the agent on ``worker.app``'s user-consent topic (``concurrency=1``).

    ``admin`` defaults to the Redis user admin on ``worker.redis`` (prefix, TTL and pseudonym
    secret from ``worker.settings``), ``publisher`` to the app's producer; tests pass twins
    (registering again under the same name replaces the agent).
    """
    settings = worker.settings
    handler = ConsentHandler(
        admin=admin if admin is not None else build_user_admin(worker),
        publisher=publisher if publisher is not None else FaustPublisher(worker.app),
        dead_letter_topic=settings.topic_dead_letters,
        max_ahead_ms=int(settings.max_clock_skew_s * 1000),
    )
    topic = worker.app.topic(
        settings.topic_user_consent,
        partitions=settings.user_events_partitions,
        key_serializer="raw",
        value_serializer="raw",
    )

    async def apply_consent(stream: Any) -> None:
        within = settings.control_within_s
        async for events in stream.take_events(settings.batch_size, within=within):
            records = inbound(events)
            batch = await until_done(
                functools.partial(handler.handle, records),
                f"consent batch of {len(records)}",
                worker.metrics.batch_retries.inc,
            )
            log.debug("consent batch: %s", batch)

    worker.app.agent(topic, name=AGENT_NAME, concurrency=1)(apply_consent)
    return handler
