"""What the consent and privacy agents share: the Redis user admin, retries, dead letters.

Both agents follow the event agent's rules (:mod:`agents.events`): one agent per process
(``concurrency=1``), batches through ``stream.take_events``, raw bytes decoded inside the
loop, a record that cannot be decoded goes to the dead-letter topic with the standard headers,
and a batch that fails for any other reason (Redis or the broker unavailable) is retried with
capped exponential backoff (0.1 s doubling to 5 s) before it is acknowledged.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, TypeVar

from app.settings import Settings, pseudonym_secret
from app.storage.user_admin import RedisUserAdmin, UserAdminConfig

if TYPE_CHECKING:
    from agents.worker import Worker

log = logging.getLogger(__name__)

T = TypeVar("T")


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
