"""Tiny synthetic interaction logs with a planted structure, for the learning tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.core.catalog_records import Item
from app.core.enums import EventType
from app.learning.interactions import InteractionLog

T0 = 1_700_000_000_000
MINUTE = 60_000


@dataclass(frozen=True)
class Planted:
    """A log, its items, and each item's planted group."""

    log: InteractionLog
    items: list[Item]
    group: dict[str, int]


def group_log(
    n_groups: int = 3,
    users_per_group: int = 20,
    items_per_group: int = 12,
    per_user: int = 8,
    seed: int = 0,
) -> Planted:
    """Users of group g like ``per_user`` random items of item group g (nothing else)."""
    rng = np.random.default_rng(seed)
    items = [
        Item(item_id=f"g{g}-i{i:02d}", title=f"Item {i} of group {g}", tags=(f"group-{g}",))
        for g in range(n_groups)
        for i in range(items_per_group)
    ]
    users: list[str] = []
    item_ids: list[str] = []
    ts: list[int] = []
    t = T0
    for g in range(n_groups):
        for u in range(users_per_group):
            chosen = rng.choice(items_per_group, size=per_user, replace=False)
            for i in chosen:
                users.append(f"u{g}-{u:02d}")
                item_ids.append(f"g{g}-i{int(i):02d}")
                ts.append(t)
                t += MINUTE
    order = rng.permutation(len(users))  # interleave users in time
    times = sorted(ts)
    log = InteractionLog.from_columns(
        [users[k] for k in order],
        [item_ids[k] for k in order],
        times,
        [EventType.LIKE] * len(users),
        item_ids=[i.item_id for i in items],
    )
    return Planted(log, items, {i.item_id: int(i.item_id[1]) for i in items})


def chain_log(
    n_chains: int = 4, chain_length: int = 10, n_users: int = 60, seed: int = 0
) -> Planted:
    """Each user walks one chain of items in order (``c<k>-s<pos>``) from a random start,
    liking each; users take turns in time, so every period has users in mid-walk."""
    rng = np.random.default_rng(seed)
    items = [
        Item(item_id=f"c{c}-s{s:02d}", title=f"Step {s} of chain {c}", tags=(f"chain-{c}",))
        for c in range(n_chains)
        for s in range(chain_length)
    ]
    walks = []
    for u in range(n_users):
        chain = int(rng.integers(n_chains))
        start = int(rng.integers(0, chain_length // 2))
        walks.append([(f"user-{u:03d}", f"c{chain}-s{s:02d}") for s in range(start, chain_length)])
    users: list[str] = []
    item_ids: list[str] = []
    while any(walks):
        for walk in walks:
            if walk:
                user, item = walk.pop(0)
                users.append(user)
                item_ids.append(item)
    log = InteractionLog.from_columns(
        users,
        item_ids,
        [T0 + k * MINUTE for k in range(len(users))],
        [EventType.LIKE] * len(users),
        item_ids=[i.item_id for i in items],
    )
    return Planted(log, items, {i.item_id: int(i.item_id[1]) for i in items})
