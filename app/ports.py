"""Ports: the small interfaces the pipeline talks to, with Redis and in-memory adapters.

A user's stored state is read and written as one unit (:class:`StoredUser` /
:class:`UserWrite`); writes are compare-and-set on a per-user version, so two workers that
briefly own the same partition during a rebalance cannot lose each other's updates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from app.core.errors import TransientError
from app.core.profile import Profile
from app.policy.consent import ConsentRecord
from app.policy.state import UserPolicyState


@dataclass(frozen=True)
class StoredUser:
    """What the store holds for one user.

    ``version`` is 0 for a user with nothing stored. ``offers_json`` is the last published
    NextBestOffer message (bytes, as published) or ``None``. ``purchased`` holds item ids the
    user bought (recent ones, capped by the store). ``recent``: the user's newest distinct
    item ids, newest first (the store's ``recent_items``, default 20, of the ``seen`` set,
    read in the same round trip), for the co-occurrence part of scoring.
    """

    user_id: str
    profile: Profile | None
    version: int = 0
    offers_json: bytes | None = None
    purchased: frozenset[str] = frozenset()
    policy: UserPolicyState = field(default_factory=UserPolicyState)
    """Contact history, offer feedback, channel engagement and cart timers (empty if none)."""
    consent: ConsentRecord | None = None
    """The user's consent record as written by the consent agent (``None``: defaults)."""
    recent: tuple[str, ...] = ()
    consent_tag: str = ""
    """Fingerprint of the stored consent record this state was read with (:func:`consent_tag`;
    ``""``: none). A write carries it, and fails unless the stored consent is still that one."""
    erased_at_ms: int = 0
    """The user's erasure marker this state was read with: epoch ms of the latest erasure
    (0: none). Events dated at or before it are dropped; a write carries it, and fails unless
    the stored marker is still that one, so state read before an erasure is never written."""


CartEntry = tuple[str, int]
"""An entry of a cart-timer index as read: the user's key id and its indexed due time (ms)."""


@dataclass(frozen=True)
class CartDue:
    """An entry of a cart-timer index: the user's earliest due timer (epoch ms), indexed
    under the input partition that carries the user's events."""

    topic: str
    partition: int
    due_ms: int


@dataclass(frozen=True)
class UserWrite:
    """One user's atomic write: applied only if the stored version is ``expected_version`` and
    the stored consent is the one of ``consent_tag``.

    ``profile`` ``None`` writes no profile fields (a user who objected to profiling).
    ``offers_json`` / ``policy_json`` ``None`` keep the stored value. ``seen`` and
    ``purchased`` map item id -> event time (ms) to add to the user's recent-item sets.
    ``decisions``: decision records (JSON) to push onto the user's decision list, oldest
    first. ``cart_due``: (re)index the user's earliest cart timer (outside the atomic write:
    the index is a hint, the timers themselves are in ``policy_json``).
    """

    user_id: str
    expected_version: int
    profile: Profile | None
    offers_json: bytes | None = None
    seen: Mapping[str, int] = field(default_factory=dict)
    purchased: Mapping[str, int] = field(default_factory=dict)
    policy_json: bytes | None = None
    decisions: Sequence[bytes] = ()
    cart_due: CartDue | None = None
    sent: Sequence[bytes] = ()
    """Every message the write's batch sent (as stored, oldest first); when any, they replace
    the stored list a redelivered batch republishes."""
    consent_tag: str = ""
    """The :attr:`StoredUser.consent_tag` the write was decided against: the write is a
    conflict unless the stored consent is still that one, so a decision can never be stored
    against a consent record (an objection, an opt-out) it did not see, even when every other
    key of the user has expired and the version started again from 0."""
    erased_at_ms: int = 0
    """The :attr:`StoredUser.erased_at_ms` the write was decided against: the write is a
    conflict unless the stored erasure marker is still that one (an erase resets the version
    to 0, and a consent record can raise it again: the version alone cannot tell)."""


@dataclass(frozen=True)
class WriteOutcome:
    """Result of :meth:`ProfileStore.commit`.

    ``versions``: new version of each user written. ``conflicts``: the users whose stored
    version was not the expected one, each with its stored state as read atomically by the
    failed write, so the caller can redo it without another read.
    """

    versions: Mapping[str, int]
    conflicts: Mapping[str, StoredUser]


def consent_tag(stored: bytes | None) -> str:
    """The fingerprint of a stored consent record's bytes (SHA-1, hex; ``""`` for none): the
    commit script computes the same of the stored value."""
    return hashlib.sha1(stored).hexdigest() if stored else ""


class PublishUnavailable(TransientError):
    """The broker did not acknowledge what was published; publish it again later."""


class StoreUnavailable(TransientError):
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

    async def load_key_ids(self, key_ids: Sequence[str]) -> dict[str, StoredUser]:
        """Stored state by key id (a cart index member; the user id itself unless ids are
        pseudonymised); each result's ``user_id`` is the real one kept in its policy state."""
        ...

    async def decisions(self, user_id: str) -> list[bytes]:
        """The user's stored decision records (JSON), newest first."""
        ...

    async def sent_messages(self, user_id: str) -> list[bytes]:
        """The messages of the user's latest sending batch (JSON as stored), oldest first."""
        ...

    async def due_carts(
        self, topic: str, partitions: Sequence[int], now_ms: int, limit: int
    ) -> dict[int, list[CartEntry]]:
        """Per partition of ``topic`` (those with any), the entries of its cart index due at
        ``now_ms`` (key id and indexed due time), at most ``limit`` each, earliest first; one
        round trip for all."""
        ...

    async def drop_cart_index(self, topic: str, entries: Mapping[int, Sequence[CartEntry]]) -> None:
        """Remove entries from the cart indexes of ``topic`` (partition -> entries as read by
        :meth:`due_carts`), after their timers fired or were found cancelled, in one round
        trip. An entry goes only while its due time is still the one read (compared
        atomically): one re-indexed meanwhile (a new timer, committed by this or another
        worker during a rebalance) stays."""
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


@dataclass(frozen=True)
class EraseResult:
    """What :meth:`UserAdmin.erase` removed: the user's keys that existed, and the user's
    entries in the cart-timer indexes."""

    deleted_keys: int
    timers_removed: int


@dataclass(frozen=True)
class UserExport:
    """Everything stored about one user, decoded (all parts empty for an unknown user).

    ``profile``: the decoded profile hash (``None`` without a vector, e.g. after an
    objection). ``consent``, ``contact_history`` (the policy state), each of ``decisions``
    (newest first) and ``current_offers`` (the last offer message) are the stored JSON
    documents, parsed (a value that is not JSON is kept as its text). ``seen`` and
    ``purchased`` map item id -> event time (epoch ms).
    """

    user_id: str
    profile: Profile | None = None
    consent: object = None
    contact_history: object = None
    decisions: Sequence[object] = ()
    current_offers: object = None
    seen: Mapping[str, int] = field(default_factory=dict)
    purchased: Mapping[str, int] = field(default_factory=dict)
    sent_messages: Sequence[object] = ()
    """The messages of the latest sending batch (parsed, oldest first)."""


class UserAdmin(Protocol):
    """Administrative operations on one user's stored state: consent, erasure, export.

    A write that changes what the event worker must know about a user changes the consent
    or the erasure marker (and bumps the profile's ``ver`` when there is a profile); the
    worker's writes compare all three, so a worker holding the user in memory meets a
    conflict and reloads.
    """

    async def apply_consent(self, user_id: str, record: ConsentRecord | None) -> bool:
        """Store ``record`` (``None``: the tombstone deletes the stored consent) atomically
        with its effects (objection: profile, offers, seen and purchased deleted); ``False``
        when a stored record is newer or the record is dated at or before the user's
        erasure (nothing changed). Raises :class:`StoreUnavailable`."""
        ...

    async def erase(self, user_id: str, at_ms: int) -> EraseResult:
        """Delete every key of the user and the user's cart-timer index entries, and mark the
        user erased at ``at_ms`` (epoch ms; a later mark is kept): the user's events and
        consent records dated at or before it are ignored from then on, and a write decided
        against state read before it fails."""
        ...

    async def export(self, user_id: str) -> UserExport:
        """Read everything stored about the user."""
        ...


# Offer feedback statistics. The import stays down here, next to the port that needs it, so
# that this section can be appended without touching the import block above.
from app.core.exploration import OfferStats, OfferStatsUpdate, StatsApplyOutcome  # noqa: E402


class OfferStatsStore(Protocol):
    """Per-offer feedback statistics (:mod:`app.core.exploration`), kept per input partition.

    Writes are idempotent under at-least-once redelivery: an update is written atomically with
    its partition's offset, and only if the stored offset is below the update's first offset.
    """

    async def apply(self, updates: Sequence[OfferStatsUpdate]) -> StatsApplyOutcome:
        """Write each update (at most one per (topic, partition)) unless its partition already
        holds some of its records (duplicates, overlaps); raises :class:`StoreUnavailable`."""
        ...

    async def read_all(self, topic: str, partitions: Sequence[int]) -> dict[str, OfferStats]:
        """Per offer, its stats summed over ``partitions`` of ``topic``, valued at the latest
        event time seen (not decayed to now); raises :class:`StoreUnavailable`."""
        ...
