"""One contract, two stores: the Redis store and its in-memory twin behave the same."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import numpy as np
import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from app.core.profile import Profile
from app.core.restock import Cycle
from app.core.vectors import vec_from_bytes
from app.policy.consent import ConsentRecord
from app.policy.state import UserPolicyState
from app.ports import CartDue, ProfileStore, UserWrite
from app.storage.keys import user_keys
from app.storage.memory_store import MemoryProfileStore
from app.storage.redis_store import RedisProfileStore, RedisStoreConfig
from tests.support.redis_cluster import redis_cluster

DIM = 8


def profile(n: int) -> Profile:
    return Profile(
        vec=np.arange(DIM, dtype=np.float32) * n,
        t_ref_ms=1_000 + n,
        n_events=n,
        updated_at_ms=2_000 + n,
        offsets={0: 10 + n, 3: 7},
        recent_event_ids=(("a", 1_000), ("b", 1_000 + n)),
        topic_id=f"topic-id-{n}",
        restock={"milk": Cycle(900 + n, 86_400_000, 2), "soap": Cycle(950, 0, 1)},
    )


@pytest.fixture(scope="module")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_cluster(tmp_path_factory.mktemp("cluster")) as url:
        yield url


@pytest.fixture(
    params=[
        pytest.param("memory", marks=pytest.mark.unit),
        pytest.param("redis", marks=pytest.mark.integration),
        pytest.param("cluster", marks=pytest.mark.integration),
    ]
)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[ProfileStore]:
    if request.param == "memory":
        yield MemoryProfileStore(seen_cap=3, decisions_cap=3, recent_items=2)
        return
    client: aioredis.Redis | RedisCluster
    if request.param == "cluster":
        client = RedisCluster.from_url(request.getfixturevalue("cluster_url"))
    else:
        client = aioredis.Redis.from_url(request.getfixturevalue("redis_url"))
    prefix = f"nbotest{uuid.uuid4().hex[:8]}"
    try:
        yield RedisProfileStore(
            client,
            RedisStoreConfig(dim=DIM, seen_cap=3, decisions_cap=3, prefix=prefix, recent_items=2),
        )
    finally:
        if request.param == "redis":
            async for key in client.scan_iter(match=f"{prefix}:*"):
                await client.delete(key)
        await client.aclose()


async def test_many_users_across_slots_commit_and_load_in_one_call_each(
    store: ProfileStore,
) -> None:
    users = [f"user-{i}" for i in range(50)]  # spread over every node of a cluster
    outcome = await store.commit([UserWrite(u, 0, profile(i)) for i, u in enumerate(users)])
    assert len(outcome.versions) == 50 and dict(outcome.conflicts) == {}
    loaded = await store.load(users)
    assert [loaded[u].profile == profile(i) for i, u in enumerate(users)] == [True] * 50


async def test_an_unknown_user_has_no_profile_and_version_zero(store: ProfileStore) -> None:
    loaded = await store.load(["nobody"])
    assert loaded["nobody"].profile is None and loaded["nobody"].version == 0
    assert loaded["nobody"].offers_json is None


async def test_a_committed_user_loads_back_unchanged(store: ProfileStore) -> None:
    outcome = await store.commit(
        [UserWrite("u1", 0, profile(2), b'{"offers":[]}', {"i1": 5}, {"i9": 6})]
    )
    assert outcome.versions == {"u1": 1} and dict(outcome.conflicts) == {}

    loaded = (await store.load(["u1"]))["u1"]
    assert loaded.profile == profile(2)
    assert loaded.version == 1
    assert loaded.offers_json == b'{"offers":[]}'
    assert loaded.purchased == frozenset({"i9"})


async def test_a_write_on_a_stale_version_is_a_conflict_and_changes_nothing(
    store: ProfileStore,
) -> None:
    await store.commit([UserWrite("u1", 0, profile(1))])
    outcome = await store.commit([UserWrite("u1", 0, profile(5)), UserWrite("u2", 0, profile(3))])

    assert list(outcome.conflicts) == ["u1"] and outcome.versions == {"u2": 1}
    returned = outcome.conflicts["u1"]  # the stored state, read by the failed write itself
    assert returned.profile == profile(1) and returned.version == 1
    loaded = await store.load(["u1", "u2"])
    assert loaded["u1"].profile == profile(1)
    assert loaded["u2"].profile == profile(3)


async def test_a_user_loads_with_the_newest_distinct_seen_items_newest_first(
    store: ProfileStore,
) -> None:
    assert (await store.load(["u1"]))["u1"].recent == ()
    await store.commit([UserWrite("u1", 0, profile(1), seen={"a": 1, "b": 3, "c": 2})])
    assert (await store.load(["u1"]))["u1"].recent == ("b", "c")  # the newest 2
    await store.commit([UserWrite("u1", 1, profile(1), seen={"a": 9, "b": 4})])
    assert (await store.load(["u1"]))["u1"].recent == ("a", "b")  # seen again: newer, once
    await store.commit([UserWrite("u1", 2, profile(1), seen={"x": 10, "y": 10})])
    assert (await store.load(["u1"]))["u1"].recent == ("y", "x")  # equal times: id descending


async def test_a_conflict_returns_the_recent_items_with_the_stored_state(
    store: ProfileStore,
) -> None:
    await store.commit([UserWrite("u1", 0, profile(1), seen={"a": 1, "b": 2, "c": 3})])
    outcome = await store.commit([UserWrite("u1", 0, profile(2), seen={"z": 99})])
    assert outcome.conflicts["u1"].recent == ("c", "b")
    assert (await store.load(["u1"]))["u1"].recent == ("c", "b")  # the failed write added none


async def test_offers_are_kept_when_a_write_carries_none(store: ProfileStore) -> None:
    await store.commit([UserWrite("u1", 0, profile(1), b"first")])
    await store.commit([UserWrite("u1", 1, profile(2), None)])
    assert (await store.load(["u1"]))["u1"].offers_json == b"first"


@pytest.mark.integration
async def test_redis_layout_is_the_public_contract(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    prefix = f"nbotest{uuid.uuid4().hex[:8]}"
    store = RedisProfileStore(
        client, RedisStoreConfig(dim=DIM, ttl_s=3_600, seen_cap=2, prefix=prefix)
    )
    try:
        await store.commit(
            [UserWrite("u:1@x", 0, profile(4), b"{}", {"a": 1, "b": 2, "c": 3}, {"p": 9})]
        )
        keys = user_keys("u:1@x", prefix)
        assert keys.profile == f"{prefix}:{{u:u:1@x}}:profile"
        raw = await client.hgetall(keys.profile)
        assert len(raw[b"vec"]) == DIM * 4
        assert np.array_equal(vec_from_bytes(raw[b"vec"], DIM), profile(4).vec)
        assert raw[b"n_events"] == b"4" and raw[b"updated_at"] == b"2004"
        assert await client.zrange(keys.seen, 0, -1) == [b"b", b"c"]  # capped to the newest 2
        for key in (keys.profile, keys.offers, keys.seen, keys.purchased):
            assert 3_500 < await client.ttl(key) <= 3_600
    finally:
        async for key in client.scan_iter(match=f"{prefix}:*"):
            await client.delete(key)
        await client.aclose()


async def test_policy_state_and_decisions_are_written_with_the_profile(
    store: ProfileStore,
) -> None:
    policy = UserPolicyState(carts={"i1": 5_000}, uid="u1")
    records = [b'{"n":1}', b'{"n":2}', b'{"n":3}', b'{"n":4}']
    await store.commit([UserWrite("u1", 0, profile(1), policy_json=policy.to_json(),
                                  decisions=records[:2])])  # fmt: skip
    await store.commit([UserWrite("u1", 1, profile(2), decisions=records[2:])])

    loaded = (await store.load(["u1"]))["u1"]
    assert loaded.policy == policy  # kept by the write that carried none
    assert await store.decisions("u1") == [b'{"n":4}', b'{"n":3}', b'{"n":2}']  # newest 3


async def test_a_conflict_returns_the_stored_policy_state(store: ProfileStore) -> None:
    policy = UserPolicyState(fired=("t1",))
    await store.commit([UserWrite("u1", 0, profile(1), policy_json=policy.to_json())])
    outcome = await store.commit([UserWrite("u1", 0, profile(2))])
    assert outcome.conflicts["u1"].policy == policy


async def test_a_write_without_a_profile_keeps_the_stored_one(store: ProfileStore) -> None:
    await store.commit([UserWrite("u1", 0, profile(1))])
    await store.commit([UserWrite("u1", 1, None, decisions=[b"{}"])])
    loaded = (await store.load(["u1"]))["u1"]
    assert loaded.profile == profile(1) and loaded.version == 2


async def test_cart_index_returns_due_users_until_dropped(store: ProfileStore) -> None:
    await store.commit(
        [
            UserWrite("u1", 0, profile(1), cart_due=CartDue("ev", 2, 1_000)),
            UserWrite("u2", 0, profile(1), cart_due=CartDue("ev", 2, 3_000)),
            UserWrite("u3", 0, profile(1), cart_due=CartDue("ev", 1, 500)),
        ]
    )
    assert await store.due_carts("ev", [2], 2_000, 10) == {2: [("u1", 1_000)]}
    assert await store.due_carts("ev", [1, 2, 3], 3_000, 10) == {
        1: [("u3", 500)],
        2: [("u1", 1_000), ("u2", 3_000)],
    }
    assert await store.due_carts("ev", [2], 3_000, 1) == {2: [("u1", 1_000)]}
    await store.drop_cart_index("ev", {2: [("u1", 1_000)], 1: []})
    assert await store.due_carts("ev", [2, 1], 9_000, 10) == {2: [("u2", 3_000)], 1: [("u3", 500)]}
    assert await store.due_carts("ev", [], 9_000, 10) == {}


async def test_an_index_entry_re_indexed_after_it_was_read_is_not_dropped(
    store: ProfileStore,
) -> None:
    """Two owners of a partition overlap in a rebalance: the old one read the entry, the new
    one committed a new timer for the user; the old one's removal must leave the new entry."""
    await store.commit([UserWrite("u1", 0, profile(1), cart_due=CartDue("ev", 0, 1_000))])
    (read,) = (await store.due_carts("ev", [0], 2_000, 10))[0]
    await store.commit([UserWrite("u1", 1, profile(2), cart_due=CartDue("ev", 0, 7_000))])

    await store.drop_cart_index("ev", {0: [read]})

    assert await store.due_carts("ev", [0], 9_000, 10) == {0: [("u1", 7_000)]}
    await store.drop_cart_index("ev", {0: [("u1", 7_000)]})
    assert await store.due_carts("ev", [0], 9_000, 10) == {}


async def store_consent(store: ProfileStore, record: ConsentRecord) -> None:
    """Write ``record`` as the consent agent does (its key has no TTL)."""
    if isinstance(store, MemoryProfileStore):
        store.set_consent(record)
        return
    assert isinstance(store, RedisProfileStore)
    client = store._client  # the consent agent's own script is another contract
    await client.set(store.keys(record.user_id).consent, record.to_json_bytes())


async def test_a_write_decided_without_the_stored_consent_is_a_conflict_that_returns_it(
    store: ProfileStore,
) -> None:
    objection = ConsentRecord.model_validate(
        {"user_id": "u1", "channels": {"web": False}, "objection": True, "ts": 5}
    )
    await store_consent(store, objection)
    # as a worker that never read the user (its other keys expired, or a cold cache) would
    blind = await store.commit([UserWrite("u1", 0, profile(1))])
    assert blind.versions == {} and list(blind.conflicts) == ["u1"]
    returned = blind.conflicts["u1"]
    assert returned.consent == objection and returned.consent_tag != ""
    assert (await store.load(["u1"]))["u1"].profile is None  # nothing was written

    loaded = (await store.load(["u1"]))["u1"]
    assert loaded.consent_tag == returned.consent_tag
    informed = await store.commit(
        [UserWrite("u1", loaded.version, None, consent_tag=loaded.consent_tag)]
    )
    assert list(informed.versions) == ["u1"]


async def erase(store: ProfileStore, user_id: str, at_ms: int) -> None:
    """Erase ``user_id`` as the privacy agent would (its own script is another contract)."""
    if isinstance(store, MemoryProfileStore):
        store.erase(user_id, at_ms)
        return
    assert isinstance(store, RedisProfileStore)
    client = store._client
    keys = store.keys(user_id)
    await client.delete(*keys.all())
    await client.set(keys.erased, str(at_ms))


async def test_a_write_decided_before_an_erasure_is_a_conflict_that_returns_the_marker(
    store: ProfileStore,
) -> None:
    await store.commit([UserWrite("u1", 0, profile(3))])
    stale = (await store.load(["u1"]))["u1"]
    assert (stale.version, stale.erased_at_ms) == (1, 0)
    await erase(store, "u1", 50_000)
    await store.commit([UserWrite("u1", 0, profile(1), erased_at_ms=50_000)])  # after it
    assert (await store.load(["u1"]))["u1"].version == 1  # the version the stale state has

    late = await store.commit([UserWrite("u1", stale.version, profile(4))])

    assert late.versions == {} and list(late.conflicts) == ["u1"]
    returned = late.conflicts["u1"]
    assert returned.erased_at_ms == 50_000 and returned.profile == profile(1)
    loaded = (await store.load(["u1"]))["u1"]
    assert (loaded.erased_at_ms, loaded.profile) == (50_000, profile(1))


@pytest.mark.integration
async def test_a_pending_cart_timer_is_addressed_by_opening_the_sealed_id(redis_url: str) -> None:
    from app.core.pseudonym import seal

    client = aioredis.Redis.from_url(redis_url)
    prefix = f"nbotest{uuid.uuid4().hex[:8]}"
    secret = b"s3cret"
    store = RedisProfileStore(client, RedisStoreConfig(dim=DIM, prefix=prefix, secret=secret))
    other = RedisProfileStore(client, RedisStoreConfig(dim=DIM, prefix=prefix, secret=b"new"))
    user = "alice@example.com"
    policy = UserPolicyState(carts={"i1": 5_000}, uid=seal(user, secret))
    try:
        await store.commit(
            [
                UserWrite(
                    user, 0, None, policy_json=policy.to_json(), cart_due=CartDue("ev", 0, 5_000)
                )
            ]
        )
        assert b"alice" not in (await client.get(store.keys(user).policy) or b"")
        ((key_id, _),) = (await store.due_carts("ev", [0], 6_000, 10))[0]
        assert "alice" not in key_id

        assert (await store.load_key_ids([key_id]))[key_id].user_id == user
        # the secret changed: the address cannot be known, so the timer fires nothing
        unknown = (await other.load_key_ids([key_id]))[key_id]
        assert unknown.user_id == key_id and unknown.policy.carts == {}
    finally:
        async for key in client.scan_iter(match=f"{prefix}:*"):
            await client.delete(key)
        await client.aclose()
