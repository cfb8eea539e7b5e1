"""Redis key names: a public contract (channel services read these keys).

Every key of one user shares the hash tag ``{u:<key_id>}``, so in a Redis Cluster they live in
one slot and a Lua script may touch them together. ``key_id`` is the user id, or its keyed
hash when pseudonymisation is on (:mod:`app.core.pseudonym`). ``user_id`` is validated by the
event schema (``[A-Za-z0-9._:@-]``, 1-128 chars), so it cannot break out of the tag.

Cart-abandonment timers are indexed per input partition (``<prefix>:cart-due:<topic>:<p>``,
a sorted set of key ids scored by the earliest due time, epoch ms): the worker that owns the
partition polls it. The authoritative timers live in the user's policy state; the index is a
hint that is rebuilt from it on every commit and cleaned when polled.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.pseudonym import pseudonymise

PREFIX = "nbo"


@dataclass(frozen=True)
class UserKeys:
    """The keys of one user."""

    profile: str
    """Hash: ``vec`` (D little-endian float32), ``n_events``, ``updated_at`` (ms), ..."""
    offers: str
    """String: the last published NextBestOffer message (JSON)."""
    seen: str
    """Sorted set: recently interacted item ids, scored by event time (ms)."""
    purchased: str
    """Sorted set: purchased item ids, scored by event time (ms); excluded from offers."""
    policy: str
    """String: the contact-policy state (JSON, :class:`app.policy.state.UserPolicyState`):
    contact history, offer feedback, channel engagement, pending cart timers."""
    decisions: str
    """List: the newest decision records (JSON), newest first, capped."""
    consent: str
    """String: the user's current consent record (JSON, as on ``user-consent``); no TTL."""
    sent: str
    """List: every message the user's latest sending batch published (JSON as stored, oldest
    first); a redelivered batch publishes all of them again, not only the last."""
    erased: str
    """String: the erasure marker (epoch ms of the user's latest erasure), with the marker
    TTL. Outside the user's own key space (``<prefix>:erased:{u:<key_id>}``, so an erase
    leaves nothing under ``<prefix>:{u:<key_id>}``) but in the same slot (same hash tag), so
    the commit and consent scripts read it atomically. Not in :meth:`all`."""

    def all(self) -> tuple[str, ...]:
        """Every key of the user's own key space, in the order the commit script expects
        them (the erasure marker, its eighth key, is not one of them)."""
        return (
            self.profile,
            self.offers,
            self.seen,
            self.purchased,
            self.policy,
            self.decisions,
            self.consent,
            self.sent,
        )


def user_keys(user_id: str, prefix: str = PREFIX, secret: bytes | None = None) -> UserKeys:
    """Keys of ``user_id`` under ``prefix`` (default ``nbo``); ``secret``: pseudonymise."""
    key_id = pseudonymise(user_id, secret)
    tag = f"{prefix}:{{u:{key_id}}}"
    return UserKeys(
        profile=f"{tag}:profile",
        offers=f"{tag}:offers",
        seen=f"{tag}:seen",
        purchased=f"{tag}:purchased",
        policy=f"{tag}:policy",
        decisions=f"{tag}:decisions",
        consent=f"{tag}:consent",
        sent=f"{tag}:sent",
        erased=f"{prefix}:erased:{{u:{key_id}}}",
    )


def cart_due_key(topic: str, partition: int, prefix: str = PREFIX) -> str:
    """The cart-timer index of one input partition (sorted set: key id -> due time, ms)."""
    return f"{prefix}:cart-due:{topic}:{partition}"
