"""Redis key names: a public contract (channel services read these keys).

Every key of one user shares the hash tag ``{u:<user_id>}``, so in a Redis Cluster they live in
one slot and a Lua script may touch them together. ``user_id`` is validated by the event schema
(``[A-Za-z0-9._:@-]``, 1-128 chars), so it cannot break out of the tag.
"""

from __future__ import annotations

from dataclasses import dataclass

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

    def all(self) -> tuple[str, str, str, str]:
        """Every key, in the order the commit script expects them."""
        return (self.profile, self.offers, self.seen, self.purchased)


def user_keys(user_id: str, prefix: str = PREFIX) -> UserKeys:
    """Keys of ``user_id`` under ``prefix`` (default ``nbo``)."""
    tag = f"{prefix}:{{u:{user_id}}}"
    return UserKeys(f"{tag}:profile", f"{tag}:offers", f"{tag}:seen", f"{tag}:purchased")
