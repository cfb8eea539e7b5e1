"""The privacy-requests agent: erases or exports a user, and reports on ``privacy-audit``.

The handler is :mod:`app.pipeline.privacy`; this registers it on the worker's faust app.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

from agents.publisher import FaustPublisher
from agents.stream import inbound, until_done
from agents.user_admin import build_user_admin
from app.pipeline.privacy import PrivacyHandler
from app.ports import OutboundRecord, Publisher, UserAdmin

if TYPE_CHECKING:
    from agents.worker import Worker

log = logging.getLogger(__name__)

AGENT_NAME = "nbo.privacy-requests"


def register_privacy_agent(
    worker: Worker, admin: UserAdmin | None = None, publisher: Publisher | None = None
) -> PrivacyHandler:
    """Register the agent on ``worker.app``'s privacy-requests topic (``concurrency=1``).

    ``admin`` defaults to the Redis user admin on ``worker.redis``, ``publisher`` to the
    app's producer; tests pass twins (registering again under the same name replaces the
    agent).
    """
    settings = worker.settings
    handler = PrivacyHandler(
        admin=admin if admin is not None else build_user_admin(worker),
        publisher=publisher if publisher is not None else FaustPublisher(worker.app),
        catalogue=worker.catalogue,
        audit_topic=settings.topic_privacy_audit,
        dead_letter_topic=settings.topic_dead_letters,
        max_ahead_ms=int(settings.max_clock_skew_s * 1000),
        on_erased=worker.processor.forget_user,
    )
    topic = worker.app.topic(
        settings.topic_privacy_requests,
        partitions=settings.user_events_partitions,
        key_serializer="raw",
        value_serializer="raw",
    )

    async def handle_requests(stream: Any) -> None:
        await worker.feed.ready.wait()
        within = settings.control_within_s
        async for events in stream.take_events(settings.batch_size, within=within):
            records = inbound(events)
            done: dict[int, OutboundRecord] = {}
            await until_done(
                functools.partial(handler.handle, records, done),
                f"privacy batch of {len(records)}",
                worker.metrics.batch_retries.inc,
            )

    worker.app.agent(topic, name=AGENT_NAME, concurrency=1)(handle_requests)
    return handler
