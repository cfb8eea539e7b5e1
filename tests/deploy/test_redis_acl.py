"""deploy/redis/users.acl grants the worker exactly what it needs, and the lookup user only reads.

A private ``redis-server`` (loopback, free port) loads the shipped file with its placeholder hashes
replaced by those of test passwords, then the real Redis store runs against it as each user.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import numpy as np
import pytest
import redis.asyncio as aioredis
from redis.exceptions import NoPermissionError

from app.core.profile import Profile
from app.ports import UserWrite
from app.storage.redis_store import RedisProfileStore, RedisStoreConfig
from tests.support.redis_acl import ACL_FILE, Server, acl_redis, start_redis, stop
from tests.support.worker import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with acl_redis(tmp_path_factory.mktemp("acl")) as running:
        yield running


@pytest.fixture
async def admin(server: Server) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(server.url(), socket_timeout=5)
    await client.acl_log_reset()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def worker_store(server: Server) -> AsyncIterator[RedisProfileStore]:
    client = aioredis.Redis.from_url(server.url("nbo-worker", server.worker_pw), socket_timeout=5)
    try:
        yield RedisProfileStore(client, RedisStoreConfig(dim=4))
    finally:
        await client.aclose()


@pytest.fixture
async def lookup(server: Server) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(server.url("nbo-lookup", server.lookup_pw), socket_timeout=5)
    try:
        yield client
    finally:
        await client.aclose()


def write(user: str, version: int) -> UserWrite:
    profile = Profile(
        vec=np.ones(4, dtype=np.float32),
        t_ref_ms=1_000,
        n_events=version + 1,
        updated_at_ms=2_000,
        offsets={0: 10 + version},
        recent_event_ids=(("e1", 1_000),),
    )
    return UserWrite(user, version, profile, b'{"offers": []}', {"i1": 1_000}, {"i2": 1_000})


async def test_the_worker_user_commits_through_the_lua_script_loads_and_pings(
    admin: aioredis.Redis, worker_store: RedisProfileStore
) -> None:
    assert await worker_store.ping()
    outcome = await worker_store.commit([write("acl-alice", 0)])
    assert outcome.versions == {"acl-alice": 1}
    loaded = (await worker_store.load(["acl-alice"]))["acl-alice"]
    assert loaded.version == 1 and loaded.offers_json == b'{"offers": []}'
    assert loaded.purchased == frozenset({"i2"})
    stale = await worker_store.commit([write("acl-alice", 0)])  # the script's conflict branch
    assert stale.versions == {} and "acl-alice" in stale.conflicts
    assert await admin.acl_log() == []


async def test_the_worker_user_reloads_the_commit_script_after_a_script_flush(
    admin: aioredis.Redis, worker_store: RedisProfileStore
) -> None:
    await worker_store.commit([write("acl-bob", 0)])
    await admin.script_flush()
    outcome = await worker_store.commit([write("acl-bob", 1)])
    assert outcome.versions == {"acl-bob": 2}
    assert await admin.acl_log() == []


async def test_the_worker_user_cannot_touch_other_keys_or_run_other_commands(
    server: Server,
) -> None:
    client = aioredis.Redis.from_url(server.url("nbo-worker", server.worker_pw), socket_timeout=5)
    try:
        with pytest.raises(NoPermissionError):
            await client.get("other:key")
        with pytest.raises(NoPermissionError):
            await client.eval("return 1", 0)
        with pytest.raises(NoPermissionError):
            await client.flushall()
        with pytest.raises(NoPermissionError):
            await client.keys("nbo:*")
    finally:
        await client.aclose()


async def test_the_lookup_user_reads_offers_and_profiles_but_cannot_write(
    worker_store: RedisProfileStore, lookup: aioredis.Redis
) -> None:
    await worker_store.commit([write("acl-carol", 0)])
    assert await lookup.ping()
    assert await lookup.get("nbo:{u:acl-carol}:offers") == b'{"offers": []}'
    assert await lookup.hget("nbo:{u:acl-carol}:profile", "n_events") == b"1"
    assert b"vec" in await lookup.hgetall("nbo:{u:acl-carol}:profile")
    assert await lookup.zrange("nbo:{u:acl-carol}:seen", 0, -1) == [b"i1"]
    with pytest.raises(NoPermissionError):
        await lookup.set("nbo:{u:acl-carol}:offers", b"x")
    with pytest.raises(NoPermissionError):
        await lookup.get("other:key")


async def test_the_lookup_user_runs_every_read_of_nbo_api(
    worker_store: RedisProfileStore, server: Server, admin: aioredis.Redis
) -> None:
    """What ``nbo api`` calls (load with the recent items, decisions, ping) under the
    lookup user, with nothing refused."""
    base = write("acl-gina", 0)
    await worker_store.commit([replace(base, decisions=[b'{"sent": false}'])])
    client = aioredis.Redis.from_url(server.url("nbo-lookup", server.lookup_pw), socket_timeout=5)
    store = RedisProfileStore(client, RedisStoreConfig(dim=4, recent_items=5))
    try:
        loaded = (await store.load(["acl-gina"]))["acl-gina"]
        assert loaded.version == 1 and loaded.recent == ("i1",)
        assert await store.decisions("acl-gina") == [b'{"sent": false}']
        assert await store.ping()
        assert await admin.acl_log() == []
    finally:
        await client.aclose()


def test_the_shipped_acl_file_cannot_be_loaded_with_its_placeholder_passwords() -> None:
    proc = start_redis(ACL_FILE, free_port())
    try:
        proc.wait(10)
    finally:
        stop(proc)
    output = proc.stdout.read().decode() if proc.stdout else ""
    assert proc.returncode != 0
    assert "password hash must be exactly 64 characters" in output


async def test_the_worker_user_applies_consent_exports_and_erases(
    admin: aioredis.Redis, server: Server
) -> None:
    from app.policy.consent import decode_consent
    from app.storage.user_admin import RedisUserAdmin, UserAdminConfig

    client = aioredis.Redis.from_url(server.url("nbo-worker", server.worker_pw), socket_timeout=5)
    user_admin = RedisUserAdmin(client, UserAdminConfig(dim=4, cart_topic="ev", cart_partitions=2))
    try:
        await RedisProfileStore(client, RedisStoreConfig(dim=4)).commit([write("acl-dave", 0)])
        for objection in ("false", "true"):
            record = decode_consent(
                b'{"user_id": "acl-dave", "channels": {}, "ts": 1, "objection": %s}'
                % objection.encode()
            )
            assert await user_admin.apply_consent("acl-dave", record)
        assert (await user_admin.export("acl-dave")).consent is not None
        assert await user_admin.apply_consent("acl-dave", None)  # a tombstone (EXISTS)
        assert (await user_admin.erase("acl-dave", 10**12)).deleted_keys == 1  # the profile
        assert await admin.acl_log() == []
    finally:
        await client.aclose()


async def test_the_worker_user_runs_every_path_of_the_worker(
    admin: aioredis.Redis, server: Server
) -> None:
    """Decisions (LPUSH, LTRIM in the commit script), cart timers (ZRANGEBYSCORE, ZREM) and offer
    statistics, as the worker runs them: the ACL refuses none of it."""
    from app.core.exploration import OfferStats, OfferStatsUpdate
    from app.ports import CartDue
    from app.storage.offer_stats import OfferStatsConfig, RedisOfferStatsStore

    client = aioredis.Redis.from_url(server.url("nbo-worker", server.worker_pw), socket_timeout=5)
    store = RedisProfileStore(client, RedisStoreConfig(dim=4))
    try:
        base = write("acl-erin", 0)
        with_everything = UserWrite(
            base.user_id, 0, base.profile, base.offers_json, base.seen, base.purchased,
            policy_json=b"{}", decisions=[b'{"sent": true}'], cart_due=CartDue("ev", 0, 5_000),
            sent=[b'{"message_id": "m1"}'],
        )  # fmt: skip
        assert (await store.commit([with_everything])).versions == {"acl-erin": 1}
        assert await store.decisions("acl-erin") == [b'{"sent": true}']
        assert await store.sent_messages("acl-erin") == [b'{"message_id": "m1"}']
        due = await store.due_carts("ev", [0], 10_000, 100)
        assert sum(len(v) for v in due.values()) == 1
        await store.drop_cart_index("ev", due)
        assert await store.due_carts("ev", [0], 10_000, 100) == {}
        stats = RedisOfferStatsStore(client, OfferStatsConfig(half_life_ms=86_400_000))
        await stats.apply([OfferStatsUpdate("ev", 0, 0, 3, {"o1": OfferStats(2, 1, 0, 1_000)})])
        assert (await stats.read_all("ev", [0]))["o1"].impressions > 0
        assert await admin.acl_log() == []
    finally:
        await client.aclose()
