"""What the consent and privacy agents share: the Redis user admin, retries, dead letters.

Both agents follow the event agent's rules (:mod:`agents.events`): one agent per process
(``concurrency=1``), batches through ``stream.take_events``, raw bytes decoded inside the
loop, a record that cannot be decoded goes to the dead-letter topic with the standard headers,
and a batch that fails for any other reason (Redis or the broker unavailable) is retried with
capped exponential backoff (0.1 s doubling to 5 s) before it is acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from agents.events import BACKOFF_MAX_S, BACKOFF_START_S
from app.pipeline.records import InboundRecord
from app.settings import Settings, pseudonym_secret
from app.storage.user_admin import RedisUserAdmin, UserAdminConfig

if TYPE_CHECKING:
    from agents.app import Worker

log = logging.getLogger(__name__)

T = TypeVar("T")


def wall_ms() -> int:
    """Wall-clock time in epoch ms."""
    return time.time_ns() // 1_000_000


def user_admin_config(settings: Settings) -> UserAdminConfig:
    """The user-admin configuration of ``settings``.

    The cart-timer indexes an erase cleans are those of the ``NBO_USER_EVENTS_PARTITIONS``
    partitions of the user-events topic: that setting must equal the topic's partition count
    (it sizes the consumer, and the deployment checks assert it).
    """
    return UserAdminConfig(
        dim=settings.vector_dim,
        ttl_s=settings.user_ttl_s,
        prefix=settings.redis_prefix,
        secret=pseudonym_secret(settings),
        cart_topic=settings.topic_user_events,
        cart_partitions=settings.user_events_partitions,
    )


def build_user_admin(worker: Worker) -> RedisUserAdmin:
    """The Redis user admin on the worker's Redis client."""
    return RedisUserAdmin(worker.redis, user_admin_config(worker.settings))


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


async def until_done(
    step: Callable[[], Awaitable[T]], what: str, on_retry: Callable[[], None] = lambda: None
) -> T:
    """Run ``step`` until it returns, retrying any exception with capped backoff (the
    caller has not acknowledged its input, so nothing is lost while Redis or Kafka is down)."""
    delay = BACKOFF_START_S
    while True:
        try:
            return await step()
        except Exception as exc:
            on_retry()
            log.warning(
                "%s failed (%s: %s); retrying in %.1f s", what, type(exc).__name__, exc, delay
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)
