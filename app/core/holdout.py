"""Sticky holdout groups: a fixed share of users gets no personalised offers (the control).

A user's position is the top 53 bits of ``blake2b(salt + "\\x00" + user_id)`` (8-byte
digest, big-endian) divided by ``2^53``: a uniform number in ``[0, 1)`` that depends on nothing
else, so a user stays in the same group across workers, restarts and replays, and the groups
are independent of any other use of the same ids (change ``salt`` to draw a new, independent
split). A user is in the control group when the position is below ``share``; raising the
share only moves users from personalised to control, never back.
"""

from __future__ import annotations

import hashlib
from typing import Final, Literal

PERSONALISED: Final = "personalised"
"""Group of users who get personalised offers."""
CONTROL: Final = "control"
"""Group of users held out of personalisation (the baseline of an uplift measurement)."""
DEFAULT_SALT: Final = "nbo-holdout"
MAX_SHARE: Final = 0.5
"""Largest holdout share allowed: the control group never outnumbers the treated users."""

Group = Literal["personalised", "control"]


def position(user_id: str, salt: str = DEFAULT_SALT) -> float:
    """The user's fixed position in ``[0, 1)`` under ``salt`` (see module doc)."""
    digest = hashlib.blake2b(f"{salt}\x00{user_id}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") >> 11) / 2.0**53  # 53 bits: exact in a float, < 1


def group_of(user_id: str, share: float, salt: str = DEFAULT_SALT) -> Group:
    """:data:`CONTROL` for a fraction ``share`` (in ``[0, 0.5]``) of users, else
    :data:`PERSONALISED`; the same answer for the same ``(user_id, share, salt)``."""
    if not 0.0 <= share <= MAX_SHARE:
        raise ValueError(f"holdout share must be in [0, {MAX_SHARE}], got {share}")
    return CONTROL if position(user_id, salt) < share else PERSONALISED
