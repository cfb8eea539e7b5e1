"""One contract, three backends: consent, erasure and export behave the same in the in-memory
twin, a single Redis server and a three-node Redis Cluster."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from app.core.profile import Profile
from app.core.restock import Cycle
from app.policy.consent import ConsentRecord, decode_consent
from app.storage.keys import cart_due_key
from app.storage.memory_user_admin import MemoryUserAdmin
from app.storage.profile_codec import profile_fields
from app.storage.user_admin import RedisUserAdmin, UserAdminConfig
from tests.support.redis_cluster import redis_cluster

DIM = 8
TTL_S = 3_600
USER = "alice@example.com"
ERASED_AT = 50_000


def profile() -> Profile:
    return Profile(
        vec=np.linspace(-1, 1, DIM, dtype=np.float32),
        t_ref_ms=1_000,
        n_events=4,
        updated_at_ms=2_000,
        offsets={0: 17},
        recent_event_ids=(("e1", 1_000),),
        restock={"milk": Cycle(900, 86_400_000, 2)},
    )


def consent(ts: int, objection: bool = False, user: str = USER) -> ConsentRecord:
    body = {"user_id": user, "channels": {"web": True, "email": False}, "ts": ts}
    return decode_consent(json.dumps({**body, "objection": objection}).encode())


class Backend:
    """Raw access to a backend's keyspace, to seed and inspect it."""

    admin: Any
    config: UserAdminConfig

    async def hset(self, key: str, fields: Mapping[str, bytes]) -> None: ...
    async def hgetall(self, key: str) -> dict[bytes, bytes]: ...
    async def set(self, key: str, value: bytes) -> None: ...
    async def get(self, key: str) -> bytes | None: ...
    async def zadd(self, key: str, members: Mapping[str, float]) -> None: ...
    async def rpush(self, key: str, *values: bytes) -> None: ...
    async def keys(self, pattern: str) -> set[str]: ...


@dataclass
class MemoryBackend(Backend):
    admin: MemoryUserAdmin
    config: UserAdminConfig

    async def hset(self, key: str, fields: Mapping[str, bytes]) -> None:
        self.admin.keyspace.setdefault(key, {}).update({k.encode(): v for k, v in fields.items()})

    async def hgetall(self, key: str) -> dict[bytes, bytes]:
        return dict(self.admin.keyspace.get(key, {}))

    async def set(self, key: str, value: bytes) -> None:
        self.admin.keyspace[key] = value

    async def get(self, key: str) -> bytes | None:
        value: bytes | None = self.admin.keyspace.get(key)
        return value

    async def zadd(self, key: str, members: Mapping[str, float]) -> None:
        self.admin.keyspace.setdefault(key, {}).update(members)

    async def rpush(self, key: str, *values: bytes) -> None:
        self.admin.keyspace.setdefault(key, []).extend(values)

    async def keys(self, pattern: str) -> set[str]:
        import fnmatch

        return {k for k in self.admin.keyspace if fnmatch.fnmatchcase(k, pattern)}


@dataclass
class RedisBackend(Backend):
    admin: RedisUserAdmin
    config: UserAdminConfig
    client: aioredis.Redis | RedisCluster

    async def hset(self, key: str, fields: Mapping[str, bytes]) -> None:
        await self.client.hset(key, mapping=dict(fields))

    async def hgetall(self, key: str) -> dict[bytes, bytes]:
        return dict(await self.client.hgetall(key))

    async def set(self, key: str, value: bytes) -> None:
        await self.client.set(key, value)

    async def get(self, key: str) -> bytes | None:
        value: bytes | None = await self.client.get(key)
        return value

    async def zadd(self, key: str, members: Mapping[str, float]) -> None:
        await self.client.zadd(key, dict(members))

    async def rpush(self, key: str, *values: bytes) -> None:
        await self.client.rpush(key, *values)

    async def keys(self, pattern: str) -> set[str]:
        return {k.decode() async for k in self.client.scan_iter(match=pattern)}


@pytest.fixture(scope="module")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_cluster(tmp_path_factory.mktemp("cluster")) as url:
        yield url


def config(secret: bytes | None = None) -> UserAdminConfig:
    prefix = f"nbotest{uuid.uuid4().hex[:8]}"
    return UserAdminConfig(
        dim=DIM, ttl_s=TTL_S, prefix=prefix, secret=secret, cart_topic="ev", cart_partitions=3
    )


@pytest.fixture(
    params=[
        pytest.param("memory", marks=pytest.mark.unit),
        pytest.param("redis", marks=pytest.mark.integration),
        pytest.param("cluster", marks=pytest.mark.integration),
    ]
)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    cfg = config()
    if request.param == "memory":
        yield MemoryBackend(MemoryUserAdmin(cfg), cfg)
        return
    client: aioredis.Redis | RedisCluster
    if request.param == "cluster":
        client = RedisCluster.from_url(request.getfixturevalue("cluster_url"))
    else:
        client = aioredis.Redis.from_url(request.getfixturevalue("redis_url"))
    try:
        yield RedisBackend(RedisUserAdmin(client, cfg), cfg, client)
    finally:
        async for key in client.scan_iter(match=f"{cfg.prefix}:*"):
            await client.delete(key)
        await client.aclose()


def with_secret(backend: Backend, secret: bytes) -> Backend:
    """The same backend with pseudonymised keys."""
    cfg = replace(backend.config, secret=secret)
    if isinstance(backend, RedisBackend):
        return RedisBackend(RedisUserAdmin(backend.client, cfg), cfg, backend.client)
    assert isinstance(backend, MemoryBackend)
    admin = MemoryUserAdmin(cfg)
    admin.keyspace = backend.admin.keyspace
    return MemoryBackend(admin, cfg)


async def seed_everything(backend: Backend, user: str = USER) -> None:
    """Every key of ``user`` and entries in two of the three cart-timer indexes."""
    keys = backend.config.keys(user)
    await backend.hset(keys.profile, {**dict(profile_fields(profile())), "ver": b"5"})
    await backend.set(keys.offers, b'{"message_id":"m1","offers":[]}')
    await backend.zadd(keys.seen, {"i1": 1_000, "i2": 1_001})
    await backend.zadd(keys.purchased, {"i9": 999})
    await backend.set(keys.policy, b'{"v":1,"contacts":{"web":[900]}}')
    await backend.rpush(keys.decisions, b'{"decision_id":"d2"}', b'{"decision_id":"d1"}')
    await backend.set(keys.consent, consent(10).to_json_bytes())
    key_id = backend.config.key_id(user)
    for p in (0, 2):
        await backend.zadd(cart_due_key("ev", p, backend.config.prefix), {key_id: 5_000 + p})


async def version(backend: Backend, user: str = USER) -> int:
    return int((await backend.hgetall(backend.config.keys(user).profile)).get(b"ver", b"0"))


async def test_consent_for_a_new_user_is_stored_and_bumps_the_version(backend: Backend) -> None:
    assert await backend.admin.apply_consent(USER, consent(100)) is True

    stored = await backend.get(backend.config.keys(USER).consent)
    assert stored is not None and decode_consent(stored) == consent(100)
    assert await version(backend) == 1
    assert (await backend.admin.export(USER)).profile is None


async def test_an_older_consent_changes_nothing(backend: Backend) -> None:
    await backend.admin.apply_consent(USER, consent(200))

    assert await backend.admin.apply_consent(USER, consent(100, objection=True)) is False
    stored = await backend.get(backend.config.keys(USER).consent)
    assert stored is not None and decode_consent(stored).ts_ms == 200
    assert await version(backend) == 1


async def test_a_newer_or_equal_consent_replaces_the_stored_one(backend: Backend) -> None:
    await backend.admin.apply_consent(USER, consent(100))
    assert await backend.admin.apply_consent(USER, consent(100)) is True
    assert await backend.admin.apply_consent(USER, consent(300)) is True

    stored = await backend.get(backend.config.keys(USER).consent)
    assert stored is not None and decode_consent(stored).ts_ms == 300
    assert await version(backend) == 3


async def test_consent_keeps_the_profile_and_bumps_its_version(backend: Backend) -> None:
    await seed_everything(backend)

    assert await backend.admin.apply_consent(USER, consent(100)) is True
    assert await version(backend) == 6
    assert (await backend.admin.export(USER)).profile == profile()


async def test_an_objection_deletes_the_profile_offers_and_item_sets_but_keeps_the_history(
    backend: Backend,
) -> None:
    await seed_everything(backend)
    keys = backend.config.keys(USER)

    assert await backend.admin.apply_consent(USER, consent(100, objection=True)) is True

    assert await backend.hgetall(keys.profile) == {b"ver": b"6"}
    left = await backend.keys(f"{backend.config.prefix}:{{u:{USER}}}:*")
    assert left == {keys.profile, keys.policy, keys.decisions, keys.consent}
    exported = await backend.admin.export(USER)
    assert exported.profile is None and exported.current_offers is None
    assert exported.seen == {} and exported.purchased == {}
    assert exported.contact_history == {"v": 1, "contacts": {"web": [900]}}


async def test_a_tombstone_deletes_the_consent_and_bumps_the_version(backend: Backend) -> None:
    await backend.admin.apply_consent(USER, consent(100))

    assert await backend.admin.apply_consent(USER, None) is True
    assert await backend.get(backend.config.keys(USER).consent) is None
    assert await version(backend) == 2
    # after a tombstone any record applies again, even an older one
    assert await backend.admin.apply_consent(USER, consent(50)) is True


async def test_erase_leaves_no_key_of_the_user_and_no_cart_timer_entry(backend: Backend) -> None:
    await seed_everything(backend)
    await seed_everything(backend, "bob")

    erased = await backend.admin.erase(USER, ERASED_AT)

    assert (erased.deleted_keys, erased.timers_removed) == (7, 2)
    assert await backend.keys(f"{backend.config.prefix}:{{u:{USER}}}*") == set()
    # what is left is the marker, outside the user's key space
    assert await backend.keys(f"*{{u:{USER}}}*") == {backend.config.keys(USER).erased}
    for p in range(3):
        index = cart_due_key("ev", p, backend.config.prefix)
        members = await backend.keys(index)
        if p == 1:
            assert members == set()
        else:  # bob's entry is still there
            assert members == {index}
    assert (await backend.admin.export("bob")).profile == profile()
    again = await backend.admin.erase(USER, ERASED_AT)
    assert (again.deleted_keys, again.timers_removed) == (0, 0)


async def test_the_erasure_marker_keeps_the_later_time(backend: Backend) -> None:
    marker = backend.config.keys(USER).erased

    await backend.admin.erase(USER, ERASED_AT)
    assert await backend.get(marker) == str(ERASED_AT).encode()
    await backend.admin.erase(USER, ERASED_AT - 1)  # a late retry of an older request
    assert await backend.get(marker) == str(ERASED_AT).encode()
    await backend.admin.erase(USER, ERASED_AT + 1)
    assert await backend.get(marker) == str(ERASED_AT + 1).encode()


async def test_a_consent_record_from_before_the_erasure_is_ignored(backend: Backend) -> None:
    await seed_everything(backend)
    await backend.admin.erase(USER, ERASED_AT)

    # a replay of the compacted consent topic: dated before the erasure, at it, after it
    assert await backend.admin.apply_consent(USER, consent(ERASED_AT - 1)) is False
    assert await backend.admin.apply_consent(USER, consent(ERASED_AT)) is False
    assert await backend.keys(f"{backend.config.prefix}:{{u:{USER}}}*") == set()
    assert await backend.admin.apply_consent(USER, consent(ERASED_AT + 1)) is True
    stored = await backend.get(backend.config.keys(USER).consent)
    assert stored is not None and decode_consent(stored).ts_ms == ERASED_AT + 1


async def test_a_tombstone_after_an_erasure_leaves_no_key(backend: Backend) -> None:
    await seed_everything(backend)
    await backend.admin.erase(USER, ERASED_AT)

    assert await backend.admin.apply_consent(USER, None) is True
    assert await backend.keys(f"{backend.config.prefix}:{{u:{USER}}}*") == set()


async def test_export_returns_what_was_stored(backend: Backend) -> None:
    await seed_everything(backend)

    exported = await backend.admin.export(USER)

    assert exported.user_id == USER
    assert exported.profile == profile()
    assert exported.consent == json.loads(consent(10).to_json_bytes())
    assert exported.contact_history == {"v": 1, "contacts": {"web": [900]}}
    assert exported.decisions == [{"decision_id": "d2"}, {"decision_id": "d1"}]
    assert exported.current_offers == {"message_id": "m1", "offers": []}
    assert exported.seen == {"i1": 1_000, "i2": 1_001}
    assert exported.purchased == {"i9": 999}


async def test_an_unknown_user_exports_nothing(backend: Backend) -> None:
    exported = await backend.admin.export("nobody")
    assert exported.profile is None and exported.consent is None
    assert exported.contact_history is None and exported.current_offers is None
    assert list(exported.decisions) == [] and exported.seen == {} and exported.purchased == {}


async def test_pseudonymised_keys_never_contain_the_user_id(backend: Backend) -> None:
    hidden = with_secret(backend, b"s3cret")
    await seed_everything(hidden)
    await hidden.admin.apply_consent(USER, consent(100))

    every_key = await hidden.keys(f"{hidden.config.prefix}:*")
    assert len(every_key) == 9  # 7 user keys and 2 cart-timer indexes
    assert not [k for k in every_key if "alice" in k]
    stored_consent = await hidden.get(hidden.config.keys(USER).consent)
    assert stored_consent is not None and b"alice" not in stored_consent
    assert decode_consent(stored_consent).user_id == hidden.config.key_id(USER)
    assert (await hidden.admin.export(USER)).profile == profile()
    assert (await hidden.admin.erase(USER, ERASED_AT)).deleted_keys == 7
    assert (await hidden.admin.erase(USER, ERASED_AT)).timers_removed == 0
    assert not [k for k in await hidden.keys(f"{hidden.config.prefix}:*") if "alice" in k]
    assert await hidden.keys(f"{hidden.config.prefix}:{{u:*") == set()


@pytest.mark.integration
async def test_consent_lives_without_ttl_and_the_profile_always_expires(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    cfg = config()
    admin = RedisUserAdmin(client, cfg)
    keys = cfg.keys(USER)
    try:
        await admin.apply_consent(USER, consent(100))
        assert await client.ttl(keys.consent) == -1
        assert 0 < await client.ttl(keys.profile) <= TTL_S

        await client.expire(keys.profile, 60)
        await admin.apply_consent(USER, consent(200))
        assert await client.ttl(keys.profile) <= 60  # an existing TTL is left alone

        await admin.apply_consent(USER, consent(300, objection=True))
        assert TTL_S - 60 < await client.ttl(keys.profile) <= TTL_S
    finally:
        await client.delete(*keys.all())
        await client.aclose()


@pytest.mark.integration
async def test_the_consent_script_is_loaded_again_after_a_script_flush(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    cfg = config()
    admin = RedisUserAdmin(client, cfg)
    try:
        await admin.apply_consent(USER, consent(100))
        await client.script_flush()
        assert await admin.apply_consent(USER, consent(200)) is True
        assert int(await client.hget(cfg.keys(USER).profile, "ver") or 0) == 2
    finally:
        await client.delete(*cfg.keys(USER).all())
        await client.aclose()
