"""Ports: the small interfaces the pipeline talks to, with Redis and in-memory adapters.

A user's stored state is read and written as one unit (:class:`StoredUser` /
:class:`UserWrite`); writes are compare-and-set on a per-user version, so two workers that
briefly own the same partition during a rebalance cannot lose each other's updates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from app.core.profile import Profile


@dataclass(frozen=True)
class StoredUser:
    """What the store holds for one user.

    ``version`` is 0 for a user with nothing stored. ``offers_json`` is the last published
    NextBestOffer message (bytes, as published) or ``None``. ``purchased`` holds item ids the
    user bought (recent ones, capped by the store).
    """

    user_id: str
    profile: Profile | None
    version: int = 0
    offers_json: bytes | None = None
    purchased: frozenset[str] = frozenset()


@dataclass(frozen=True)
class UserWrite:
    """One user's atomic write: applied only if the stored version is ``expected_version``.

    ``offers_json`` ``None`` keeps the stored offers. ``seen`` and ``purchased`` map item id ->
    event time (ms) to add to the user's recent-item sets.
    """

    user_id: str
    expected_version: int
    profile: Profile
    offers_json: bytes | None = None
    seen: Mapping[str, int] = field(default_factory=dict)
    purchased: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class WriteOutcome:
    """Result of :meth:`ProfileStore.commit`.

    ``versions``: new version of each user written. ``conflicts``: the users whose stored
    version was not the expected one, each with its stored state as read atomically by the
    failed write, so the caller can redo it without another read.
    """

    versions: Mapping[str, int]
    conflicts: Mapping[str, StoredUser]


class StoreUnavailable(RuntimeError):
    """The store cannot be reached; the caller retries and must not acknowledge the input."""


class ProfileStore(Protocol):
    """Per-user state: load many in one round trip, commit many in one round trip."""

    async def load(self, user_ids: Sequence[str]) -> dict[str, StoredUser]:
        """Stored state of each user (every id present in the result)."""
        ...

    async def commit(self, writes: Sequence[UserWrite]) -> WriteOutcome:
        """Apply every write whose version matches, each atomically; return the others' state."""
        ...

    async def ping(self) -> bool:
        """Whether the store answers now."""
        ...


@dataclass(frozen=True)
class OutboundRecord:
    """A record to publish: topic, key, value and headers (raw bytes)."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()


class Publisher(Protocol):
    """Publishes records; returns when the broker acknowledged all of them."""

    async def publish(self, records: Sequence[OutboundRecord]) -> None: ...
