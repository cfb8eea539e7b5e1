"""A Lua script of :mod:`app.storage`, run with ``EVALSHA`` on one Redis or a Redis Cluster.

The pattern of :mod:`app.storage.redis_store`, factored for reuse: the script is loaded once
(``SCRIPT LOAD``, on every primary of a cluster); the calls of a batch go out in one pipeline
on a single server, concurrently on a cluster (redis-py refuses ``EVALSHA`` in cluster
pipelines). When the server lost the script (restart, failover, ``SCRIPT FLUSH``), it is loaded
again and the whole batch redone once: only for scripts whose calls are idempotent.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import (
    AskError,
    ClusterError,
    NoPermissionError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.ports import StoreUnavailable

REDIS_ERRORS = (RedisError, RedisClusterException, OSError)
"""What a Redis call can raise; :func:`redis_unavailable` tells which of it is transient."""

_UNAVAILABLE = (
    RedisConnectionError,  # also authentication, too many clients, loading the dataset
    RedisTimeoutError,
    OSError,
    ReadOnlyError,  # a replica after a failover: the client reconnects to the new primary
    OutOfMemoryError,  # maxmemory reached: an operator frees memory or raises it
    NoPermissionError,  # an ACL that lacks a command: an operator fixes the user
    ClusterError,  # cluster down, primary down
    TryAgainError,
    AskError,  # slots moving: the cluster client follows, or the next attempt does
    RedisClusterException,
)
_UNAVAILABLE_REPLIES = frozenset({"MISCONF", "BUSY", "NOREPLICAS", "MASTERDOWN", "CLUSTERDOWN"})
"""Error replies redis-py leaves as a plain ``ResponseError`` that mean "not now": a failed
snapshot blocks writes, a script is running, too few replicas, no primary."""


def redis_unavailable(exc: BaseException) -> bool:
    """Whether ``exc``, raised by a Redis call, means "Redis cannot serve this now" (the caller
    raises :class:`~app.ports.StoreUnavailable`, and the input is retried) rather than "this
    call can never succeed" (a script refusing its arguments, a wrong type: the input is
    isolated and dead-lettered)."""
    if isinstance(exc, _UNAVAILABLE):
        return True
    return isinstance(exc, ResponseError) and str(exc).split(" ", 1)[0] in _UNAVAILABLE_REPLIES


ScriptCall = tuple[Sequence[str], Sequence[Any]]
"""One call of a script: its keys and its arguments."""


class LuaScript:
    """One script file of the ``app.storage`` package (see module doc)."""

    def __init__(self, filename: str) -> None:
        self.name = filename
        self.source = resources.files("app.storage").joinpath(filename).read_text("utf-8")
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()
        self._loaded = False

    async def run_idempotent(
        self, client: aioredis.Redis | RedisCluster, calls: Sequence[ScriptCall]
    ) -> tuple[list[Any], int]:
        """Every call's reply, in order, and the round trips used (a pipeline counts once).

        Raises :class:`StoreUnavailable` when Redis is unreachable or loses the script twice.
        """
        if not calls:
            return [], 0
        round_trips = 0
        for attempt in (1, 2):
            try:
                if not self._loaded:  # on every primary of a cluster
                    await client.script_load(self.source)
                    self._loaded = True
                round_trips += len(calls) if isinstance(client, RedisCluster) else 1
                return await self._run(client, calls), round_trips
            except NoScriptError:
                self._loaded = False
                if attempt == 2:
                    raise StoreUnavailable(f"Redis keeps losing the script {self.name}") from None
            except REDIS_ERRORS as exc:
                if not redis_unavailable(exc):
                    raise
                raise StoreUnavailable(f"Redis unreachable running {self.name}: {exc}") from exc
        raise AssertionError("unreachable")

    async def _run(
        self, client: aioredis.Redis | RedisCluster, calls: Sequence[ScriptCall]
    ) -> list[Any]:
        if isinstance(client, RedisCluster):
            return list(
                await asyncio.gather(*(client.evalsha(self.sha, len(k), *k, *a) for k, a in calls))
            )
        async with client.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.evalsha(self.sha, len(keys), *keys, *args)
            return list(await pipe.execute())
