"""The console's signed session cookie."""

from __future__ import annotations

import pytest

from app.console.session import Session, sign, verify

pytestmark = pytest.mark.unit

KEY = b"k" * 32


def test_a_signed_session_verifies_until_it_expires() -> None:
    value = sign(KEY, Session("ops.team-1", 1_000))
    assert verify(KEY, value, 999.0) == Session("ops.team-1", 1_000)
    assert verify(KEY, value, 1_000.0) is None


def test_another_key_a_changed_name_or_expiry_and_garbage_are_no_session() -> None:
    value = sign(KEY, Session("ops", 1_000))
    assert verify(b"x" * 32, value, 0.0) is None
    assert verify(KEY, value.replace("ops", "opz", 1), 0.0) is None
    assert verify(KEY, value.replace("1000", "9000", 1), 0.0) is None
    for garbage in (None, "", "ops", "ops.1000", "a" * 300):
        assert verify(KEY, garbage, 0.0) is None


def test_a_client_name_with_a_trailing_newline_is_neither_signed_nor_accepted() -> None:
    from app.console.session import _signature

    with pytest.raises(ValueError):
        sign(KEY, Session("ops\n", 1_000))
    payload = "ops\n.1000"
    forged = f"{payload}.{_signature(KEY, payload)}"  # validly signed, a name with a newline
    assert verify(KEY, forged, 0.0) is None


def test_a_csrf_token_is_good_for_its_own_session_only() -> None:
    from app.console.session import csrf_ok, csrf_token

    mine = sign(KEY, Session("ops", 1_000))
    theirs = sign(KEY, Session("ops", 2_000))
    token = csrf_token(KEY, mine)
    assert csrf_ok(KEY, mine, token)
    assert not csrf_ok(KEY, theirs, token)
    assert not csrf_ok(b"x" * 32, mine, token)
    assert token not in mine and mine not in token
    for bad in (None, "", token[:-1], token + "A", "é" * 10, "a" * 500):
        assert not csrf_ok(KEY, mine, bad)
    assert not csrf_ok(KEY, None, token)
