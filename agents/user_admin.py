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

from app.storage.user_admin import RedisUserAdmin, user_admin_config

if TYPE_CHECKING:
    from agents.worker import Worker

log = logging.getLogger(__name__)

T = TypeVar("T")


def build_user_admin(worker: Worker) -> RedisUserAdmin:
    """The Redis user admin on the worker's Redis client."""
    return RedisUserAdmin(worker.redis, user_admin_config(worker.settings))
