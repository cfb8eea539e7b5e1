"""Optional pseudonymisation of user ids in Redis keys and in the decision log.

With a secret set (``NBO_PSEUDONYM_SECRET``), a user id is replaced by
``HMAC-SHA256(secret, user_id)`` (hex, first 32 characters = 128 bits) wherever it names
something stored: Redis keys, cart-timer entries and ``nbo-decisions`` records. Messages to
channel services keep the real id (they must address the user). Without a secret the id is
used as it is. The mapping is one-way: lookups (HTTP, privacy requests) hash the id they are
given.
"""

from __future__ import annotations

import hashlib
import hmac

PSEUDONYM_CHARS = 32
"""Hex characters kept of the HMAC (128 bits: collisions are not a practical concern)."""


def pseudonymise(user_id: str, secret: bytes | None) -> str:
    """``user_id`` itself without a secret, else its keyed hash (see module doc)."""
    if not secret:
        return user_id
    return hmac.new(secret, user_id.encode("utf-8"), hashlib.sha256).hexdigest()[:PSEUDONYM_CHARS]
