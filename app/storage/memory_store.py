"""In-memory twin of :class:`app.storage.redis_store.RedisProfileStore` for fast tests.

Same semantics: per-user compare-and-set on a version, recent-item sets capped by the newest
event times. ``available = False`` makes every call raise :class:`StoreUnavailable`, to test
how the pipeline waits for a store that went away.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from app.ports import StoredUser, StoreUnavailable, UserWrite, WriteOutcome


def _capped(current: dict[str, int], added: Mapping[str, int], cap: int) -> dict[str, int]:
    merged = {**current, **added}
    newest = sorted(merged.items(), key=lambda kv: (kv[1], kv[0]))[-cap:] if cap > 0 else []
    return dict(newest)


@dataclass
class _Entry:
    stored: StoredUser
    seen: dict[str, int] = field(default_factory=dict)
    purchased: dict[str, int] = field(default_factory=dict)


class MemoryProfileStore:
    """Per-user state in a dict; counts round trips like the Redis store would make."""

    def __init__(self, seen_cap: int = 200, purchased_cap: int = 500) -> None:
        self._users: dict[str, _Entry] = {}
        self._seen_cap = seen_cap
        self._purchased_cap = purchased_cap
        self.available = True
        self.round_trips = 0

    def _check(self) -> None:
        if not self.available:
            raise StoreUnavailable("memory store marked unavailable")
        self.round_trips += 1

    async def load(self, user_ids: Sequence[str]) -> dict[str, StoredUser]:
        if not user_ids:
            return {}
        self._check()
        return {
            uid: self._users[uid].stored if uid in self._users else StoredUser(uid, None)
            for uid in user_ids
        }

    async def commit(self, writes: Sequence[UserWrite]) -> WriteOutcome:
        if not writes:
            return WriteOutcome({}, {})
        self._check()
        versions: dict[str, int] = {}
        conflicts: dict[str, StoredUser] = {}
        for write in writes:
            entry = self._users.get(write.user_id)
            stored_version = entry.stored.version if entry else 0
            if stored_version != write.expected_version:
                conflicts[write.user_id] = (
                    entry.stored if entry else StoredUser(write.user_id, None)
                )
                continue
            seen = _capped(entry.seen if entry else {}, write.seen, self._seen_cap)
            bought = _capped(entry.purchased if entry else {}, write.purchased, self._purchased_cap)
            offers = write.offers_json
            if offers is None and entry is not None:
                offers = entry.stored.offers_json
            version = stored_version + 1
            stored = StoredUser(write.user_id, write.profile, version, offers, frozenset(bought))
            self._users[write.user_id] = _Entry(stored, seen, bought)
            versions[write.user_id] = version
        return WriteOutcome(versions, conflicts)

    async def ping(self) -> bool:
        return self.available

    def seen_items(self, user_id: str) -> dict[str, int]:
        """Recent items of ``user_id`` (item id -> event time ms), for assertions."""
        entry = self._users.get(user_id)
        return dict(entry.seen) if entry else {}
