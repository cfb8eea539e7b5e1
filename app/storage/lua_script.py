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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import (
    DataError,
    NoScriptError,
    RedisClusterException,
    RedisError,
    ResponseError,
)

from app.ports import StoreUnavailable

REDIS_ERRORS = (RedisError, RedisClusterException, OSError)
"""What a Redis call can raise; :func:`redis_unavailable` tells which of it is transient."""

_INPUT_ERRORS = ("nbo commit:", "nbo consent:", "nbo offer-stats:", "WRONGTYPE")
"""Replies about the call's own arguments: the validation errors of this package's scripts
(raised before their first write) and a key of the wrong type."""


def redis_unavailable(exc: BaseException) -> bool:
    """Whether ``exc``, raised by a Redis call, means "Redis cannot serve this now" (the caller
    raises :class:`~app.ports.StoreUnavailable` and the input is retried) rather than "this
    call can never succeed" (the input is isolated and dead-lettered).

    An error of the dependency is presumed to be about the dependency: connection, timeout,
    a read-only replica after a failover, OOM, MISCONF, BUSY, a cluster that is down, and an
    ACL that refuses a command (also inside a script) are all "not now", to be fixed by Redis
    or its operator. Only a reply known to be about the call's arguments is "never": this
    package's scripts refusing their arguments, a key of the wrong type, or a value the client
    cannot even send.
    """
    if isinstance(exc, DataError):
        return False
    if isinstance(exc, ResponseError):
        text = str(exc)
        return not any(marker in text for marker in _INPUT_ERRORS)
    return isinstance(exc, REDIS_ERRORS)


@contextmanager
def unavailable_raises(what: str) -> Iterator[None]:
    """Around Redis calls: an error meaning "Redis cannot serve this now"
    (:func:`redis_unavailable`) raises :class:`~app.ports.StoreUnavailable` ("Redis
    unreachable <what>: ..."); any other error, and ``NoScriptError`` (the callers load the
    script again), propagates as it is."""
    try:
        yield
    except NoScriptError:
        raise
    except REDIS_ERRORS as exc:
        if not redis_unavailable(exc):
            raise
        raise StoreUnavailable(f"Redis unreachable {what}: {exc}") from exc


@dataclass(frozen=True)
class ReplicaAck:
    """How many replicas must hold a write (``WAIT``) before it counts, and how long to wait."""

    replicas: int = 0
    timeout_ms: int = 1_000

    def check(self, acked: Any) -> None:
        """Raise :class:`StoreUnavailable` when ``WAIT`` counted fewer replicas."""
        if self.replicas > 0 and int(acked) < self.replicas:
            raise StoreUnavailable(
                f"only {int(acked)} of {self.replicas} Redis replicas acknowledged the write "
                f"within {self.timeout_ms} ms"
            )


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
        self,
        client: aioredis.Redis | RedisCluster,
        calls: Sequence[ScriptCall],
        ack: ReplicaAck | None = None,
    ) -> tuple[list[Any], int]:
        """Every call's reply, in order, and the round trips used (a pipeline counts once).

        ``ack``: the pipeline ends with ``WAIT`` for that many replicas (single server only);
        short of them :class:`StoreUnavailable` is raised (the calls are idempotent: the
        caller retries). Raises :class:`StoreUnavailable` when Redis is unreachable or loses
        the script twice.
        """
        if not calls:
            return [], 0
        round_trips = 0
        for attempt in (1, 2):
            try:
                with unavailable_raises(f"running {self.name}"):
                    if not self._loaded:  # on every primary of a cluster
                        await client.script_load(self.source)
                        self._loaded = True
                    round_trips += len(calls) if isinstance(client, RedisCluster) else 1
                    return await self._run(client, calls, ack), round_trips
            except NoScriptError:
                self._loaded = False
                if attempt == 2:
                    raise StoreUnavailable(f"Redis keeps losing the script {self.name}") from None
        raise AssertionError("unreachable")

    async def _run(
        self,
        client: aioredis.Redis | RedisCluster,
        calls: Sequence[ScriptCall],
        ack: ReplicaAck | None,
    ) -> list[Any]:
        if isinstance(client, RedisCluster):
            return list(
                await asyncio.gather(*(client.evalsha(self.sha, len(k), *k, *a) for k, a in calls))
            )
        async with client.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.evalsha(self.sha, len(keys), *keys, *args)
            if ack is not None and ack.replicas > 0:
                pipe.execute_command("WAIT", ack.replicas, ack.timeout_ms)
            replies = list(await pipe.execute())
        if ack is not None and ack.replicas > 0:
            ack.check(replies.pop())
        return replies
