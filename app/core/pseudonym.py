"""Optional pseudonymisation of user ids in everything stored.

With a secret set (``NBO_PSEUDONYM_SECRET``), a user id is replaced by
``HMAC-SHA256(secret, user_id)`` (hex, first 32 characters = 128 bits) wherever it names or
is written into something stored: Redis keys, cart-timer entries, the stored consent record
and offer message, ``nbo-decisions`` records. The ids derived from a user id
(``message_id``, ``decision_id``) are derived from the pseudonym, so they cannot be
recomputed from a guessed id without the secret. The one place a stored value must lead back
to the person is a pending cart timer, whose message must be addressed: there the id is
**sealed** (:func:`seal`: AES-SIV, deterministic authenticated encryption with a key derived
from the secret), never kept in clear. Messages to channel services keep the real id (they
must address the user). Without a secret the id is used as it is and nothing is sealed.
Lookups (HTTP, privacy requests) hash the id they are given.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

PSEUDONYM_CHARS = 32
"""Hex characters kept of the HMAC (128 bits: collisions are not a practical concern)."""

SEALED_PREFIX = "s1."
"""Marks a sealed id (version 1 of the sealing)."""

_SEAL_KEY_LABEL = b"nbo-stream:seal-user-id:v1"


def pseudonymise(user_id: str, secret: bytes | None) -> str:
    """``user_id`` itself without a secret, else its keyed hash (see module doc)."""
    if not secret:
        return user_id
    return hmac.new(secret, user_id.encode("utf-8"), hashlib.sha256).hexdigest()[:PSEUDONYM_CHARS]


@functools.lru_cache(maxsize=4)
def _cipher(secret: bytes) -> AESSIV:
    # a key of its own for sealing (512 bits: AES-256-SIV), derived from the secret once
    # (deriving it and building the cipher cost ~5 us, sealing itself under 1 us)
    return AESSIV(hmac.new(secret, _SEAL_KEY_LABEL, hashlib.sha512).digest())


def seal(user_id: str, secret: bytes | None) -> str:
    """``user_id`` encrypted with a key derived from ``secret`` (itself without a secret).
    Deterministic: the same id seals to the same text, so a stored state that holds it does
    not change from one write to the next."""
    if not secret:
        return user_id
    sealed = _cipher(secret).encrypt(user_id.encode("utf-8"), None)
    return SEALED_PREFIX + base64.urlsafe_b64encode(sealed).decode("ascii").rstrip("=")


class SealBroken(ValueError):
    """A sealed id that does not open with this secret (tampered, or another secret)."""


def unseal(text: str, secret: bytes | None) -> str:
    """The user id sealed in ``text`` (see :func:`seal`); text that is not sealed is returned
    as it is (state written without a secret). Raises :class:`SealBroken`."""
    if not secret or not text.startswith(SEALED_PREFIX):
        return text
    body = text[len(SEALED_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        return _cipher(secret).decrypt(raw, None).decode("utf-8")
    except (InvalidTag, ValueError) as exc:
        raise SealBroken("a sealed user id does not open with this secret") from exc
