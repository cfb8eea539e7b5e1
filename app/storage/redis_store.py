"""Redis adapter of :class:`app.ports.ProfileStore`: one pipelined round trip per call.

``load`` reads every user's erasure marker, profile hash, offers, purchased set, policy
state, consent and newest ``recent_items`` seen items (``ZREVRANGE``) in one pipeline;
``commit`` runs one Lua script per user (``commit.lua``: compare-and-set on the profile's
``ver`` field, the consent and the erasure marker, then profile,
offers, recent-item sets, policy state and decision log written atomically, every key's TTL
refreshed) in one pipeline, together with the cart-timer index updates; a failed
compare-and-set returns the stored state (with the recent items). The script is loaded once
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
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError

from app.core.pseudonym import SealBroken, unseal
from app.policy.consent import ConsentRecord
from app.policy.state import UserPolicyState
from app.ports import (
    CartEntry,
    StoredUser,
    StoreUnavailable,
    UserWrite,
    WriteOutcome,
    consent_tag,
)
from app.storage.keys import UserKeys, cart_due_key, user_keys
from app.storage.lua_script import REDIS_ERRORS, LuaScript, ReplicaAck, unavailable_raises
from app.storage.profile_codec import decode_profile, profile_fields

log = logging.getLogger(__name__)


def _key_id(keys: UserKeys) -> str:
    """The user's id as it appears in its keys (``<prefix>:{u:<key_id>}:...``)."""
    return keys.profile[keys.profile.index("{u:") + 3 : keys.profile.index("}")]


@dataclass(frozen=True)
class RedisStoreConfig:
    """Parameters of the Redis store.

    ``ttl_s``: TTL of every per-user key, refreshed on each write (default 30 days).
    ``seen_cap`` / ``purchased_cap``: most recent items kept per user (defaults 200 / 500).
    ``decisions_cap``: decision records kept per user (default 20). ``secret``: pseudonymise
    user ids in keys (:mod:`app.core.pseudonym`; default none). ``recent_items``: newest seen
    items loaded with each user (:attr:`StoredUser.recent`, default 20; 0 reads none).
    """

    dim: int = 64
    ttl_s: int = 30 * 86_400
    seen_cap: int = 200
    purchased_cap: int = 500
    decisions_cap: int = 20
    prefix: str = "nbo"
    secret: bytes | None = None
    recent_items: int = 20
    ack_replicas: int = 0
    """Replicas that must hold a commit before it counts (``WAIT``, same round trip; 0: the
    primary's acknowledgement is enough). Short of them the commit raises
    :class:`StoreUnavailable`: the batch is retried and its offsets are not committed."""
    ack_timeout_ms: int = 1_000
    """How long ``WAIT`` waits for :attr:`ack_replicas`, ms."""


def _marker_ms(raw: Any) -> int:
    """An erasure marker's value (epoch ms), 0 for none; a value that is not a number
    counts as 0, as the commit script's ``tonumber`` does."""
    if not raw:
        return 0
    try:
        return int(float(bytes(raw) if not isinstance(raw, str) else raw))
    except ValueError:
        return 0


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
        self._cart_drop = LuaScript("cart_drop.lua")
        self.round_trips = 0
        if config.ack_replicas > 0 and isinstance(client, RedisCluster):
            raise ValueError(
                "waiting for replicas (NBO_REDIS_ACK_REPLICAS) works with one primary "
                "(a single server or Sentinel), not with a Redis Cluster"
            )

    def keys(self, user_id: str) -> UserKeys:
        """The Redis keys of ``user_id`` (pseudonymised when a secret is configured)."""
        return user_keys(user_id, self._config.prefix, self._config.secret)

    def _commit_keys(self, user_id: str) -> tuple[str, ...]:
        """The KEYS of ``commit.lua``: the user's keys, then the erasure marker."""
        keys = self.keys(user_id)
        return (*keys.all(), keys.erased)

    async def load(self, user_ids: Sequence[str]) -> dict[str, StoredUser]:
        """One pipeline: profile, offers, purchased, policy, consent and recent items of each
        user."""
        if not user_ids:
            return {}
        loaded = await self._load([self.keys(u) for u in user_ids], user_ids)
        return dict(zip(user_ids, loaded, strict=True))

    async def _load(
        self, all_keys: Sequence[UserKeys], user_ids: Sequence[str]
    ) -> list[StoredUser]:
        self.round_trips += 1
        recent_n = self._config.recent_items
        width = 7 if recent_n > 0 else 6
        with unavailable_raises("while loading"):
            async with self._client.pipeline(transaction=False) as pipe:
                for keys in all_keys:
                    pipe.get(keys.erased)
                    pipe.hgetall(keys.profile)
                    pipe.get(keys.offers)
                    pipe.zrange(keys.purchased, 0, -1)
                    pipe.get(keys.policy)
                    pipe.get(keys.consent)
                    if recent_n > 0:
                        pipe.zrevrange(keys.seen, 0, recent_n - 1)
                replies: list[Any] = await pipe.execute()
        return [
            self._stored(
                user_id, *replies[width * i + 1 : width * (i + 1)], erased=replies[width * i]
            )
            for i, user_id in enumerate(user_ids)
        ]

    def _stored(
        self,
        user_id: str,
        raw_profile: Any,
        offers: Any,
        purchased: Sequence[bytes],
        policy: Any,
        consent: Any,
        recent: Sequence[bytes] = (),
        *,
        erased: Any = None,
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
            policy=UserPolicyState.from_json(policy) if policy else UserPolicyState(),
            consent=ConsentRecord.model_validate_json(consent) if consent else None,
            consent_tag=consent_tag(bytes(consent) if consent else None),
            recent=tuple(bytes(r).decode() for r in recent),
            erased_at_ms=_marker_ms(erased),
        )

    async def commit(self, writes: Sequence[UserWrite]) -> WriteOutcome:
        """One pipeline of commit-script calls; users whose version moved are conflicts.
        With :attr:`RedisStoreConfig.ack_replicas`, the same pipeline ends with ``WAIT``
        (a batch without writes sends a fence write and ``WAIT``: what an earlier attempt
        wrote must be on the replicas too before its offsets are committed)."""
        if not writes:
            if self._config.ack_replicas > 0:
                await self._fence()
            return WriteOutcome({}, {})
        cfg = self._config
        calls = [(self._commit_keys(w.user_id), self._args(w)) for w in writes]
        index = [
            (cart_due_key(d.topic, d.partition, cfg.prefix), d.due_ms, self.keys(w.user_id))
            for w in writes
            if (d := w.cart_due) is not None
        ]
        replies: list[Any] = []
        for attempt in (1, 2):
            try:
                with unavailable_raises("while committing"):
                    replies = await self._call_commit(calls, index)
                break
            except NoScriptError:
                # the server restarted or failed over without the script, or SCRIPT FLUSH:
                # load it again and redo the batch once; writes that went through the first
                # time are compare-and-set, so they come back as conflicts, not twice
                self._script_loaded = False
                if attempt == 2:
                    raise StoreUnavailable("Redis keeps losing the commit script") from None
        versions: dict[str, int] = {}
        conflicts: dict[str, StoredUser] = {}
        for write, reply in zip(writes, replies, strict=True):
            if int(reply[0]) == 1:
                versions[write.user_id] = int(reply[1])
            else:
                conflicts[write.user_id] = self._stored(
                    write.user_id, *reply[2:8], erased=reply[8] if len(reply) > 8 else None
                )
        return WriteOutcome(versions, conflicts)

    async def _call_commit(
        self,
        calls: Sequence[tuple[tuple[str, ...], Sequence[Any]]],
        index: Sequence[tuple[str, int, UserKeys]],
    ) -> list[Any]:
        """Run the commit script once per user, and ZADD the cart index entries: one
        pipeline (single server) or concurrent calls (cluster: redis-py refuses EVALSHA in
        cluster pipelines). Returns the scripts' replies."""
        if not self._script_loaded:  # on every primary of a cluster
            await self._client.script_load(self._script)
            self._script_loaded = True
        if isinstance(self._client, RedisCluster):
            self.round_trips += len(calls) + len(index)
            replies = await asyncio.gather(
                *(self._client.evalsha(self._sha, len(k), *k, *a) for k, a in calls),
                *(self._client.zadd(key, {_key_id(k): due}) for key, due, k in index),
            )
            return list(replies[: len(calls)])
        self.round_trips += 1
        async with self._client.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.evalsha(self._sha, len(keys), *keys, *args)
            for key, due, k in index:
                pipe.zadd(key, {_key_id(k): due})
            self._wait(pipe)
            replies = list(await pipe.execute())
        self._check_acks(replies[-1] if self._config.ack_replicas > 0 else None)
        return replies[: len(calls)]

    def _wait(self, pipe: Any) -> None:
        """Queue ``WAIT`` for the configured replicas on ``pipe`` (nothing when 0)."""
        cfg = self._config
        if cfg.ack_replicas > 0:
            pipe.execute_command("WAIT", cfg.ack_replicas, cfg.ack_timeout_ms)

    def _check_acks(self, acked: Any) -> None:
        """Raise :class:`StoreUnavailable` when ``WAIT`` counted fewer replicas than asked."""
        ReplicaAck(self._config.ack_replicas, self._config.ack_timeout_ms).check(acked)

    async def _fence(self) -> None:
        """A write of this connection, then ``WAIT``: every write the primary had before it,
        an earlier attempt's included, is on the replicas once it returns."""
        self.round_trips += 1
        with unavailable_raises("while waiting for the replicas"):
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.set(f"{self._config.prefix}:fence", "1", px=60_000)
                self._wait(pipe)
                replies = list(await pipe.execute())
        self._check_acks(replies[-1])

    def _args(self, write: UserWrite) -> list[bytes | str | int]:
        cfg = self._config
        fields = profile_fields(write.profile) if write.profile is not None else []
        args: list[bytes | str | int] = [
            write.expected_version,
            cfg.ttl_s,
            write.offers_json if write.offers_json is not None else b"",
            cfg.seen_cap,
            cfg.purchased_cap,
            write.policy_json if write.policy_json is not None else b"",
            cfg.decisions_cap,
            max(cfg.recent_items, 0),
            write.consent_tag,
            write.erased_at_ms,
            len(fields),
        ]
        for name, value in fields:
            args += [name, value]
        for items in (write.seen, write.purchased):
            args.append(len(items))
            for item_id, ts_ms in items.items():
                args += [ts_ms, item_id]
        args.append(len(write.decisions))
        args.extend(write.decisions)
        args.append(len(write.sent))
        args.extend(write.sent)
        return args

    async def decisions(self, user_id: str) -> list[bytes]:
        """The user's decision records (JSON), newest first (one LRANGE)."""
        self.round_trips += 1
        with unavailable_raises("while reading decisions"):
            found: list[Any] = await self._client.lrange(self.keys(user_id).decisions, 0, -1)
            return [bytes(f) for f in found]

    async def sent_messages(self, user_id: str) -> list[bytes]:
        """The messages of the user's latest sending batch, oldest first (one LRANGE)."""
        self.round_trips += 1
        with unavailable_raises("while reading sent messages"):
            found: list[Any] = await self._client.lrange(self.keys(user_id).sent, 0, -1)
            return [bytes(f) for f in found]

    async def due_carts(
        self, topic: str, partitions: Sequence[int], now_ms: int, limit: int
    ) -> dict[int, list[CartEntry]]:
        """Due entries per partition's cart index: one pipeline of ZRANGEBYSCORE WITHSCORES."""
        if not partitions:
            return {}
        prefix = self._config.prefix
        self.round_trips += 1
        with unavailable_raises("while polling timers"):
            async with self._client.pipeline(transaction=False) as pipe:
                for partition in partitions:
                    key = cart_due_key(topic, partition, prefix)
                    pipe.zrangebyscore(key, "-inf", now_ms, start=0, num=limit, withscores=True)
                replies: list[Any] = await pipe.execute()
        return {
            partition: [(bytes(m).decode(), int(score)) for m, score in found]
            for partition, found in zip(partitions, replies, strict=True)
            if found
        }

    async def drop_cart_index(self, topic: str, entries: Mapping[int, Sequence[CartEntry]]) -> None:
        """``cart_drop.lua`` once per partition's index (each removal conditional on the due
        time read): one pipeline (concurrent calls on a cluster)."""
        prefix = self._config.prefix
        calls = [
            ((cart_due_key(topic, partition, prefix),), [x for e in found for x in e])
            for partition, found in entries.items()
            if found
        ]
        if not calls:
            return
        _, round_trips = await self._cart_drop.run_idempotent(self._client, calls)
        self.round_trips += round_trips

    async def load_key_ids(self, key_ids: Sequence[str]) -> dict[str, StoredUser]:
        """Stored state by key id (a cart index member); ``user_id`` of each result is the
        real id kept in the policy state (``uid``), else the key id itself."""
        if not key_ids:
            return {}
        prefix = self._config.prefix
        keys = [user_keys(k, prefix) for k in key_ids]  # already pseudonymised: no secret
        loaded = await self._load(keys, key_ids)
        return {k: self._addressable(k, s) for k, s in zip(key_ids, loaded, strict=True)}

    def _addressable(self, key_id: str, state: StoredUser) -> StoredUser:
        """``state`` with its real user id, opened from the policy state (sealed when ids are
        pseudonymised); a seal that does not open (the secret changed) leaves the key id and
        no pending timer, so nothing is sent to an address that cannot be known."""
        uid = state.policy.uid
        if not uid:
            return replace(state, user_id=key_id)
        try:
            return replace(state, user_id=unseal(uid, self._config.secret))
        except SealBroken:
            log.warning("a pending cart timer's user id does not open: the timer is dropped")
            policy = state.policy.model_copy(update={"carts": {}, "uid": None})
            return replace(state, user_id=key_id, policy=policy)

    async def ping(self) -> bool:
        """Whether Redis answers PING now."""
        try:
            return bool(await self._client.ping())
        except REDIS_ERRORS:
            return False
