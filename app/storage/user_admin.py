"""Redis adapter of :class:`app.ports.UserAdmin`: consent, erasure and export of one user.

* ``apply_consent``: one call of ``consent.lua`` over the user's keys and erasure marker (one
  hash tag, so one slot of a Redis Cluster): the erasure and newer-``ts`` checks, the
  consent write or delete, the ``ver`` bump and, on objection, the deletion of profile,
  offers, seen and purchased happen atomically.

Scripts are loaded once (``SCRIPT LOAD``, on every primary of a cluster) and called with
``EVALSHA``; after ``NOSCRIPT`` (restart, failover, ``SCRIPT FLUSH``) a script is loaded
again and the call repeated once (:class:`~app.storage.lua_script.LuaScript`).
* ``erase``: one call of ``erase.lua`` over the user's keys and erasure marker (same slot):
  every key deleted and the marker ``<prefix>:erased:{u:<key_id>}`` set to the erasure time
  with :attr:`UserAdminConfig.erasure_ttl_s`, atomically; then ``ZREM`` of the user's key id
  from the cart-timer index of every partition of the user-events topic
  (:attr:`UserAdminConfig.cart_partitions`, which must be the topic's partition count:
  ``NBO_USER_EVENTS_PARTITIONS``, as the deployment checks assert). The index keys live in
  other slots, so that part is a pipeline (split per node on a cluster), not atomic; an
  entry left behind by a crash is harmless (a timer without state fires nothing) and the
  retried request removes it.
* ``export``: one pipeline of reads over the user's keys.

Works with ``redis.asyncio.Redis`` and ``RedisCluster`` alike. Connection failures raise
:class:`~app.ports.StoreUnavailable`. Key names: :func:`app.storage.keys.user_keys` with the
configured prefix and pseudonym secret.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from app.core.defaults import ERASURE_TTL_S
from app.core.pseudonym import pseudonymise
from app.policy.consent import ConsentRecord
from app.ports import EraseResult, UserExport
from app.settings import Settings, pseudonym_secret
from app.storage.keys import PREFIX, UserKeys, cart_due_key, user_keys
from app.storage.lua_script import LuaScript, ReplicaAck, unavailable_raises
from app.storage.profile_codec import decode_profile


@dataclass(frozen=True)
class UserAdminConfig:
    """Parameters of the user-admin adapters.

    ``dim``: vector dimension D (default 64). ``ttl_s``: TTL given to a profile hash that has
    none (default 30 days, ``NBO_USER_TTL_S``). ``prefix``: key prefix (default ``nbo``).
    ``secret``: pseudonymisation secret (``None``: raw user ids in keys). ``cart_topic`` /
    ``cart_partitions``: the user-events topic and its partition count, whose cart-timer
    indexes an erase cleans (defaults ``user-events`` / 12). ``erasure_ttl_s``: see below.
    """

    dim: int = 64
    ttl_s: int = 30 * 86_400
    prefix: str = PREFIX
    secret: bytes | None = None
    cart_topic: str = "user-events"
    cart_partitions: int = 12
    erasure_ttl_s: int = ERASURE_TTL_S
    ack: ReplicaAck = field(default_factory=ReplicaAck)
    """Replicas that must hold a consent change or an erasure before it counts
    (``NBO_REDIS_ACK_REPLICAS``): its offset is committed only then."""
    """TTL of an erasure marker (``NBO_ERASURE_TTL_S``): at least the retention of every
    topic a worker may still read the user's records from."""

    def keys(self, user_id: str) -> UserKeys:
        """The keys of ``user_id``."""
        return user_keys(user_id, self.prefix, self.secret)

    def stored_consent(self, record: ConsentRecord | None) -> ConsentRecord | None:
        """``record`` as stored: its ``user_id`` replaced by the pseudonym when ids are
        pseudonymised (no stored value holds the id in clear)."""
        if record is None or not self.secret:
            return record
        return record.model_copy(update={"user_id": self.key_id(record.user_id)})

    def key_id(self, user_id: str) -> str:
        """The id of ``user_id`` inside its keys and the cart-timer indexes."""
        return pseudonymise(user_id, self.secret)

    def cart_indexes(self) -> list[str]:
        """Every cart-timer index key of the user-events topic."""
        return [cart_due_key(self.cart_topic, p, self.prefix) for p in range(self.cart_partitions)]


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
        erasure_ttl_s=settings.erasure_ttl_s,
        ack=ReplicaAck(settings.redis_ack_replicas, settings.redis_ack_timeout_ms),
    )


def consent_script_keys(keys: UserKeys) -> tuple[str, ...]:
    """The KEYS of ``consent.lua``, in its order."""
    return (
        keys.profile,
        keys.offers,
        keys.seen,
        keys.purchased,
        keys.consent,
        keys.erased,
        keys.sent,
    )


def erase_script_keys(keys: UserKeys) -> tuple[str, ...]:
    """The KEYS of ``erase.lua``, in its order."""
    return (*keys.all(), keys.erased)


def consent_script_args(record: ConsentRecord | None, ttl_s: int) -> list[bytes | int | str]:
    """The ARGV of ``consent.lua`` for ``record`` (``None``: tombstone)."""
    if record is None:
        return [b"", 0, "0", ttl_s]
    return [record.to_json_bytes(), record.ts_ms, "1" if record.objection else "0", ttl_s]


def parse_json(raw: bytes | str | None) -> object:
    """A stored JSON document, parsed; ``None`` stays ``None``; a value that is not JSON is
    returned as its text (an export must not fail on one bad value)."""
    if raw is None:
        return None
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    try:
        parsed: object = json.loads(text)
    except ValueError:
        return text
    return parsed


class RedisUserAdmin:
    """Consent, erasure and export of users in Redis (see module doc)."""

    def __init__(self, client: aioredis.Redis | RedisCluster, config: UserAdminConfig) -> None:
        self._client = client
        self._config = config
        self._consent = LuaScript("consent.lua")
        self._erase = LuaScript("erase.lua")

    async def apply_consent(self, user_id: str, record: ConsentRecord | None) -> bool:
        """Run ``consent.lua`` once (see module doc); ``False``: a newer record is stored, or
        the record is dated at or before the user's erasure."""
        if record is not None and record.user_id != user_id:
            raise ValueError("the consent record is of another user")
        keys = consent_script_keys(self._config.keys(user_id))
        args = consent_script_args(self._config.stored_consent(record), self._config.ttl_s)
        replies, _ = await self._consent.run_idempotent(
            self._client, [(keys, args)], self._config.ack
        )
        return int(replies[0]) == 1

    async def erase(self, user_id: str, at_ms: int) -> EraseResult:
        """``erase.lua`` (keys deleted, marker set to ``at_ms``), then ZREM from every
        cart-timer index."""
        cfg = self._config
        keys = erase_script_keys(cfg.keys(user_id))
        replies, _ = await self._erase.run_idempotent(
            self._client, [(keys, [at_ms, cfg.erasure_ttl_s])], cfg.ack
        )
        deleted = int(replies[0])
        with unavailable_raises("while erasing"):
            indexes = cfg.cart_indexes()
            removed: list[Any] = []
            if indexes:
                async with self._client.pipeline(transaction=False) as pipe:
                    for index in indexes:
                        pipe.zrem(index, cfg.key_id(user_id))
                    removed = await pipe.execute()
        return EraseResult(deleted_keys=deleted, timers_removed=sum(int(n) for n in removed))

    async def export(self, user_id: str) -> UserExport:
        """One pipeline reading every key of the user."""
        keys = self._config.keys(user_id)
        with unavailable_raises("while exporting"):
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.hgetall(keys.profile)
                pipe.get(keys.consent)
                pipe.get(keys.policy)
                pipe.lrange(keys.decisions, 0, -1)
                pipe.get(keys.offers)
                pipe.zrange(keys.seen, 0, -1, withscores=True)
                pipe.zrange(keys.purchased, 0, -1, withscores=True)
                pipe.lrange(keys.sent, 0, -1)
                replies: list[Any] = await pipe.execute()
        raw_profile, consent, policy, decisions, offers, seen, purchased, sent = replies
        profile, _ = decode_profile(raw_profile, self._config.dim)
        return UserExport(
            user_id=user_id,
            profile=profile,
            consent=parse_json(consent),
            contact_history=parse_json(policy),
            decisions=[parse_json(d) for d in decisions],
            current_offers=parse_json(offers),
            seen=_scored(seen),
            purchased=_scored(purchased),
            sent_messages=[parse_json(m) for m in sent],
        )


def _scored(pairs: Sequence[tuple[bytes, float]]) -> dict[str, int]:
    return {member.decode("utf-8", "replace"): int(score) for member, score in pairs}
