"""Pseudonyms and sealed ids: what a stored value may hold instead of a user id."""

from __future__ import annotations

import pytest

from app.core.pseudonym import SEALED_PREFIX, SealBroken, pseudonymise, seal, unseal

pytestmark = pytest.mark.unit

SECRET = b"s3cret"
USER = "alice@example.com"


def test_the_pseudonym_is_a_keyed_hash_that_depends_on_the_secret() -> None:
    alias = pseudonymise(USER, SECRET)
    assert len(alias) == 32 and "alice" not in alias
    assert alias == pseudonymise(USER, SECRET)
    assert alias != pseudonymise(USER, b"other")
    assert pseudonymise(USER, None) == USER


def test_a_sealed_id_opens_with_the_secret_and_holds_nothing_readable() -> None:
    sealed = seal(USER, SECRET)
    assert sealed.startswith(SEALED_PREFIX) and "alice" not in sealed and "example" not in sealed
    assert unseal(sealed, SECRET) == USER


def test_sealing_is_deterministic_so_a_stored_state_does_not_change_between_writes() -> None:
    assert seal(USER, SECRET) == seal(USER, SECRET)
    assert seal(USER, SECRET) != seal("bob@example.com", SECRET)


def test_without_a_secret_nothing_is_sealed() -> None:
    assert seal(USER, None) == USER
    assert unseal(USER, None) == USER
    assert unseal(USER, SECRET) == USER  # state written before the secret was set


@pytest.mark.parametrize(
    "tamper",
    [
        lambda s: seal(USER, b"another secret"),
        lambda s: s[:-2] + ("AA" if not s.endswith("AA") else "BB"),
        lambda s: SEALED_PREFIX + "!!not base64!!",
        lambda s: SEALED_PREFIX,
    ],
    ids=["other-secret", "flipped", "garbage", "empty"],
)
def test_a_seal_that_was_tampered_with_or_made_with_another_secret_does_not_open(
    tamper: object,
) -> None:
    broken = tamper(seal(USER, SECRET))  # type: ignore[operator]
    with pytest.raises(SealBroken):
        unseal(broken, SECRET)
