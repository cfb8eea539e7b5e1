"""In-memory twin of :class:`app.storage.user_admin.RedisUserAdmin` for fast tests.

It keeps a raw keyspace under the same key names (so pseudonymisation and "no key left
behind" are testable without Redis), with Redis types as Python values: hash ->
``dict[bytes, bytes]``, string -> ``bytes``, sorted set -> ``dict[str, float]`` (member ->
score), list -> ``list[bytes]`` (head first). TTLs are not modelled. ``available = False``
makes every call raise :class:`StoreUnavailable`.
"""

from __future__ import annotations

from typing import Any

from app.policy.consent import ConsentRecord
from app.ports import EraseResult, StoreUnavailable, UserExport
from app.storage.profile_codec import decode_profile
from app.storage.user_admin import UserAdminConfig, parse_json


def _marker_ms(raw: bytes | None) -> int:
    """An erasure marker's epoch ms (0: none)."""
    return int(raw) if raw else 0


class MemoryUserAdmin:
    """Consent, erasure and export over a dict keyspace (see module doc)."""

    def __init__(self, config: UserAdminConfig | None = None) -> None:
        self.config = config or UserAdminConfig()
        self.keyspace: dict[str, Any] = {}
        """Key name -> value (see module doc); tests seed and inspect it directly."""
        self.available = True
        self.calls = 0

    def _check(self) -> None:
        if not self.available:
            raise StoreUnavailable("memory user admin marked unavailable")
        self.calls += 1

    async def apply_consent(self, user_id: str, record: ConsentRecord | None) -> bool:
        """Same rules as ``consent.lua``."""
        self._check()
        if record is not None and record.user_id != user_id:
            raise ValueError("the consent record is of another user")
        keys = self.config.keys(user_id)
        if record is not None:
            if record.ts_ms <= _marker_ms(self.keyspace.get(keys.erased)):
                return False  # dated at or before the user's erasure
            stored = parse_json(self.keyspace.get(keys.consent))
            if isinstance(stored, dict):
                stored_ts = stored.get("ts")
                if (
                    isinstance(stored_ts, int | float)
                    and not isinstance(stored_ts, bool)
                    and stored_ts > record.ts_ms
                ):
                    return False
            stored_record = self.config.stored_consent(record)
            assert stored_record is not None
            self.keyspace[keys.consent] = stored_record.to_json_bytes()
        else:
            self.keyspace.pop(keys.consent, None)
        if record is None and keys.profile not in self.keyspace:
            return True  # a tombstone without a profile creates no key
        profile: dict[bytes, bytes] = self.keyspace.get(keys.profile, {})
        version = int(profile.get(b"ver", b"0")) + 1
        if record is not None and record.objection:
            for key in (keys.offers, keys.seen, keys.purchased, keys.sent):
                self.keyspace.pop(key, None)
            profile = {}
        profile[b"ver"] = str(version).encode()
        self.keyspace[keys.profile] = profile
        return True

    async def erase(self, user_id: str, at_ms: int) -> EraseResult:
        """Delete the user's keys and cart-index entries, and set the erasure marker (the
        later of the stored one and ``at_ms``); counts as Redis would."""
        self._check()
        keys = self.config.keys(user_id)
        deleted = sum(self.keyspace.pop(key, None) is not None for key in keys.all())
        marker = max(_marker_ms(self.keyspace.get(keys.erased)), at_ms)
        self.keyspace[keys.erased] = str(marker).encode()
        key_id = self.config.key_id(user_id)
        removed = 0
        for index in self.config.cart_indexes():
            members: dict[str, float] | None = self.keyspace.get(index)
            if members is not None and members.pop(key_id, None) is not None:
                removed += 1
                if not members:  # Redis drops an emptied sorted set
                    del self.keyspace[index]
        return EraseResult(deleted_keys=deleted, timers_removed=removed)

    async def export(self, user_id: str) -> UserExport:
        """Everything under the user's keys, decoded."""
        self._check()
        keys = self.config.keys(user_id)
        space = self.keyspace
        profile, _ = decode_profile(space.get(keys.profile, {}), self.config.dim)
        return UserExport(
            user_id=user_id,
            profile=profile,
            consent=parse_json(space.get(keys.consent)),
            contact_history=parse_json(space.get(keys.policy)),
            decisions=[parse_json(d) for d in space.get(keys.decisions, [])],
            current_offers=parse_json(space.get(keys.offers)),
            seen={m: int(s) for m, s in space.get(keys.seen, {}).items()},
            purchased={m: int(s) for m, s in space.get(keys.purchased, {}).items()},
            sent_messages=[parse_json(m) for m in space.get(keys.sent, [])],
        )
