"""In-memory twin of :class:`app.storage.redis_store.RedisProfileStore` for fast tests.

Same semantics: per-user compare-and-set on a version, recent-item sets capped by the newest
event times, policy state and decision log written with the profile, cart-timer indexes per
partition. ``available = False`` makes every call raise :class:`StoreUnavailable`, to test
how the pipeline waits for a store that went away. :meth:`MemoryProfileStore.set_consent`
does what the consent agent's script does (store the record, bump the version; an objection
deletes the profile, offers and item sets); :meth:`MemoryProfileStore.erase` what the
privacy agent's erase script does (keys gone, erasure marker set).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from app.policy.consent import ConsentRecord
from app.ports import (
    CartEntry,
    StoredUser,
    StoreUnavailable,
    UserWrite,
    WriteOutcome,
    consent_tag,
)


def _capped(current: dict[str, int], added: Mapping[str, int], cap: int) -> dict[str, int]:
    merged = {**current, **added}
    newest = sorted(merged.items(), key=lambda kv: (kv[1], kv[0]))[-cap:] if cap > 0 else []
    return dict(newest)


def _newest(seen: Mapping[str, int], n: int) -> tuple[str, ...]:
    """The ``n`` newest items, newest first, as ``ZREVRANGE seen 0 n-1`` orders them (event
    time descending, then item id descending)."""
    ordered = sorted(seen.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
    return tuple(item for item, _ in ordered[: max(n, 0)])


@dataclass
class _Entry:
    stored: StoredUser
    seen: dict[str, int] = field(default_factory=dict)
    purchased: dict[str, int] = field(default_factory=dict)
    decisions: list[bytes] = field(default_factory=list)
    sent: list[bytes] = field(default_factory=list)


class MemoryProfileStore:
    """Per-user state in a dict; counts round trips like the Redis store would make."""

    def __init__(
        self,
        seen_cap: int = 200,
        purchased_cap: int = 500,
        decisions_cap: int = 20,
        recent_items: int = 20,
    ) -> None:
        self._users: dict[str, _Entry] = {}
        self._carts: dict[tuple[str, int], dict[str, int]] = {}
        self._erased: dict[str, int] = {}
        self._recent_items = recent_items
        self._seen_cap = seen_cap
        self._purchased_cap = purchased_cap
        self._decisions_cap = decisions_cap
        self.available = True
        self.round_trips = 0

    def _check(self) -> None:
        if not self.available:
            raise StoreUnavailable("memory store marked unavailable")
        self.round_trips += 1

    def _stored(self, user_id: str) -> StoredUser:
        entry = self._users.get(user_id)
        erased = self._erased.get(user_id, 0)
        if entry is None:
            return StoredUser(user_id, None, erased_at_ms=erased)
        return replace(
            entry.stored, recent=_newest(entry.seen, self._recent_items), erased_at_ms=erased
        )

    async def load(self, user_ids: Sequence[str]) -> dict[str, StoredUser]:
        if not user_ids:
            return {}
        self._check()
        return {uid: self._stored(uid) for uid in user_ids}

    async def load_key_ids(self, key_ids: Sequence[str]) -> dict[str, StoredUser]:
        """Key ids are user ids here (no pseudonymisation in the twin)."""
        return await self.load(key_ids)

    async def commit(self, writes: Sequence[UserWrite]) -> WriteOutcome:
        if not writes:
            return WriteOutcome({}, {})
        self._check()
        versions: dict[str, int] = {}
        conflicts: dict[str, StoredUser] = {}
        for write in writes:
            entry = self._users.get(write.user_id)
            stored = self._stored(write.user_id)
            if (stored.version, stored.consent_tag, stored.erased_at_ms) != (
                write.expected_version,
                write.consent_tag,
                write.erased_at_ms,
            ):
                conflicts[write.user_id] = stored
                continue
            seen = _capped(entry.seen if entry else {}, write.seen, self._seen_cap)
            bought = _capped(entry.purchased if entry else {}, write.purchased, self._purchased_cap)
            decisions = [*reversed(write.decisions), *(entry.decisions if entry else [])]
            policy = stored.policy
            if write.policy_json is not None:
                policy = type(policy).from_json(write.policy_json)
            version = stored.version + 1
            updated = StoredUser(
                write.user_id,
                write.profile if write.profile is not None else stored.profile,
                version,
                write.offers_json if write.offers_json is not None else stored.offers_json,
                frozenset(bought),
                policy,
                stored.consent,
                consent_tag=stored.consent_tag,
            )
            sent = list(write.sent) if write.sent else (entry.sent if entry else [])
            self._users[write.user_id] = _Entry(
                updated, seen, bought, decisions[: self._decisions_cap], sent
            )
            versions[write.user_id] = version
            if write.cart_due is not None:
                due = write.cart_due
                self._carts.setdefault((due.topic, due.partition), {})[write.user_id] = due.due_ms
        return WriteOutcome(versions, conflicts)

    async def ping(self) -> bool:
        return self.available

    async def decisions(self, user_id: str) -> list[bytes]:
        self._check()
        entry = self._users.get(user_id)
        return list(entry.decisions) if entry else []

    async def sent_messages(self, user_id: str) -> list[bytes]:
        self._check()
        entry = self._users.get(user_id)
        return list(entry.sent) if entry else []

    async def due_carts(
        self, topic: str, partitions: Sequence[int], now_ms: int, limit: int
    ) -> dict[int, list[CartEntry]]:
        if not partitions:
            return {}
        self._check()
        found: dict[int, list[CartEntry]] = {}
        for partition in partitions:
            index = self._carts.get((topic, partition), {})
            due = sorted((t, k) for k, t in index.items() if t <= now_ms)
            if due:
                found[partition] = [(k, t) for t, k in due[:limit]]
        return found

    async def drop_cart_index(self, topic: str, entries: Mapping[int, Sequence[CartEntry]]) -> None:
        if any(entries.values()):
            self._check()
            for partition, found in entries.items():
                index = self._carts.get((topic, partition), {})
                for key_id, due_ms in found:
                    if index.get(key_id) == due_ms:  # re-indexed meanwhile: it stays
                        del index[key_id]

    def set_consent(self, record: ConsentRecord) -> None:
        """Store ``record`` as the consent agent would (bumps the version)."""
        entry = self._users.get(record.user_id) or _Entry(StoredUser(record.user_id, None))
        stored = entry.stored
        if stored.consent is not None and stored.consent.ts_ms > record.ts_ms:
            return
        if record.objection:
            stored = StoredUser(stored.user_id, None, stored.version, policy=stored.policy)
            entry = _Entry(stored, decisions=entry.decisions)
        entry.stored = replace(
            stored,
            version=stored.version + 1,
            consent=record,
            consent_tag=consent_tag(record.to_json_bytes()),
        )
        self._users[record.user_id] = entry

    def erase(self, user_id: str, at_ms: int) -> None:
        """Erase ``user_id`` as the privacy agent's script does: every key of the user gone
        (the version with them), the cart-index entries removed, the erasure marker set to
        ``at_ms`` (a later marker is kept)."""
        self._users.pop(user_id, None)
        for index in self._carts.values():
            index.pop(user_id, None)
        self._erased[user_id] = max(self._erased.get(user_id, 0), at_ms)

    def expire(self, user_id: str) -> None:
        """Let every key of ``user_id`` but the consent expire, as their TTL does in Redis:
        the profile (and with it the version), offers, seen, purchased, policy state and
        decisions are gone; the consent record stays."""
        entry = self._users.get(user_id)
        if entry is None:
            return
        kept = entry.stored
        self._users[user_id] = _Entry(
            StoredUser(user_id, None, consent=kept.consent, consent_tag=kept.consent_tag)
        )

    def seen_items(self, user_id: str) -> dict[str, int]:
        """Recent items of ``user_id`` (item id -> event time ms), for assertions."""
        entry = self._users.get(user_id)
        return dict(entry.seen) if entry else {}

    def cart_index(self, topic: str, partition: int) -> dict[str, int]:
        """The cart index of a partition (key id -> due ms), for assertions."""
        return dict(self._carts.get((topic, partition), {}))
