"""Redis adapter of :class:`app.ports.ProfileStore`: one pipelined round trip per call.

``load`` reads every user's profile hash, offers and purchased set in one pipeline; ``commit``
runs one Lua script per user (``commit.lua``: compare-and-set on the profile's ``ver`` field,
then profile, offers and recent-item sets written atomically, every key's TTL refreshed) in one
pipeline; a failed compare-and-set returns the stored state. The script is loaded once
(``SCRIPT LOAD``, on every primary of a Redis Cluster) and called with ``EVALSHA``; the same
code works with a single server (``redis.asyncio.Redis``) and a cluster (``RedisCluster``),
since every key of one user shares a hash tag; redis-py refuses ``EVALSHA`` in cluster
pipelines, so on a cluster the calls of a batch go out concurrently instead. ``round_trips``
counts requests sent (a pipeline counts once; for metrics and the benchmark).
Keys: :mod:`app.storage.keys`.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.ports import StoredUser, StoreUnavailable, UserWrite, WriteOutcome
from app.storage.keys import user_keys
from app.storage.profile_codec import decode_profile, profile_fields

_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError)


@dataclass(frozen=True)
class RedisStoreConfig:
    """Parameters of the Redis store.

    ``ttl_s``: TTL of every per-user key, refreshed on each write (default 30 days).
    ``seen_cap`` / ``purchased_cap``: most recent items kept per user (defaults 200 / 500).
    """

    dim: int = 64
    ttl_s: int = 30 * 86_400
    seen_cap: int = 200
    purchased_cap: int = 500
    prefix: str = "nbo"


def _commit_script() -> str:
    return resources.files("app.storage").joinpath("commit.lua").read_text(encoding="utf-8")


class RedisProfileStore:
    """Per-user state in Redis (see module doc)."""

    def __init__(self, client: aioredis.Redis | RedisCluster, config: RedisStoreConfig) -> None:
        self._client = client
        self._config = config
        self._script = _commit_script()
        self._sha = hashlib.sha1(self._script.encode()).hexdigest()
        self._script_loaded = False
        self.round_trips = 0

    async def load(self, user_ids: Sequence[str]) -> dict[str, StoredUser]:
        """One pipeline: HGETALL profile, GET offers, ZRANGE purchased for each user."""
        if not user_ids:
            return {}
        self.round_trips += 1
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for user_id in user_ids:
                    keys = user_keys(user_id, self._config.prefix)
                    pipe.hgetall(keys.profile)
                    pipe.get(keys.offers)
                    pipe.zrange(keys.purchased, 0, -1)
                replies: list[Any] = await pipe.execute()
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(f"Redis unreachable while loading: {exc}") from exc
        result: dict[str, StoredUser] = {}
        for i, user_id in enumerate(user_ids):
            raw_profile, offers, purchased = replies[3 * i : 3 * i + 3]
            result[user_id] = self._stored(user_id, raw_profile, offers, purchased)
        return result

    def _stored(
        self, user_id: str, raw_profile: Any, offers: Any, purchased: Sequence[bytes]
    ) -> StoredUser:
        if isinstance(raw_profile, list):  # a flat HGETALL reply from inside Lua
            raw_profile = dict(zip(raw_profile[::2], raw_profile[1::2], strict=True))
        profile, version = decode_profile(raw_profile, self._config.dim)
        return StoredUser(
            user_id=user_id,
            profile=profile,
            version=version,
            offers_json=offers or None,
            purchased=frozenset(p.decode() for p in purchased),
        )

    async def commit(self, writes: Sequence[UserWrite]) -> WriteOutcome:
        """One pipeline of commit-script calls; users whose version moved are conflicts."""
        if not writes:
            return WriteOutcome({}, {})
        cfg = self._config
        calls = [(user_keys(w.user_id, cfg.prefix).all(), self._args(w)) for w in writes]
        replies: list[Any] = []
        for attempt in (1, 2):
            try:
                replies = await self._call_commit(calls)
                break
            except NoScriptError:
                # the server restarted or failed over without the script, or SCRIPT FLUSH:
                # load it again and redo the batch once; writes that went through the first
                # time are compare-and-set, so they come back as conflicts, not twice
                self._script_loaded = False
                if attempt == 2:
                    raise StoreUnavailable("Redis keeps losing the commit script") from None
            except _UNAVAILABLE as exc:
                raise StoreUnavailable(f"Redis unreachable while committing: {exc}") from exc
        versions: dict[str, int] = {}
        conflicts: dict[str, StoredUser] = {}
        for write, reply in zip(writes, replies, strict=True):
            if int(reply[0]) == 1:
                versions[write.user_id] = int(reply[1])
            else:
                conflicts[write.user_id] = self._stored(write.user_id, *reply[2:5])
        return WriteOutcome(versions, conflicts)

    async def _call_commit(
        self, calls: Sequence[tuple[tuple[str, ...], Sequence[Any]]]
    ) -> list[Any]:
        """Run the commit script once per user: one pipeline (single server) or concurrent
        calls (cluster: redis-py refuses EVALSHA in cluster pipelines)."""
        if not self._script_loaded:  # on every primary of a cluster
            await self._client.script_load(self._script)
            self._script_loaded = True
        if isinstance(self._client, RedisCluster):
            self.round_trips += len(calls)
            return list(
                await asyncio.gather(
                    *(self._client.evalsha(self._sha, len(k), *k, *a) for k, a in calls)
                )
            )
        self.round_trips += 1
        async with self._client.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.evalsha(self._sha, len(keys), *keys, *args)
            return list(await pipe.execute())

    def _args(self, write: UserWrite) -> list[bytes | str | int]:
        cfg = self._config
        fields = profile_fields(write.profile)
        args: list[bytes | str | int] = [
            write.expected_version,
            cfg.ttl_s,
            write.offers_json if write.offers_json is not None else b"",
            cfg.seen_cap,
            cfg.purchased_cap,
            len(fields),
        ]
        for name, value in fields:
            args += [name, value]
        for items in (write.seen, write.purchased):
            args.append(len(items))
            for item_id, ts_ms in items.items():
                args += [ts_ms, item_id]
        return args

    async def ping(self) -> bool:
        """Whether Redis answers PING now."""
        try:
            return bool(await self._client.ping())
        except _UNAVAILABLE:
            return False
