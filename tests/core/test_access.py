"""Who may read personal data: tokens file lines, bearer tokens, scopes and rate limits."""

from __future__ import annotations

import pytest

from app.core.access import (
    HELD_PER_CLIENT,
    TOKEN_PREFIX,
    ApiClient,
    Scope,
    TokenBucket,
    TokensFileError,
    authorise,
    bearer_token,
    new_token,
    parse_scopes,
    parse_tokens,
    refusal_hold_s,
    retry_after,
    token_hash,
)

pytestmark = pytest.mark.unit

PUSH_TOKEN = "nbo_push-token"
SUPPORT_TOKEN = "nbo_support-token"


def clients() -> dict[str, ApiClient]:
    return parse_tokens(
        "# the push service reads offers only\n"
        f"push {token_hash(PUSH_TOKEN)} offers:read\n"
        "\n"
        f"support {token_hash(SUPPORT_TOKEN)} decisions:read,profile:read\n"
    )


def test_a_new_token_is_long_random_and_marked() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(t.startswith(TOKEN_PREFIX) and len(t) >= 40 for t in tokens)


def test_the_file_keeps_hashes_and_scopes_and_a_client_writes_back_the_same_line() -> None:
    found = clients()
    push = found[token_hash(PUSH_TOKEN)]
    assert (push.name, push.scopes) == ("push", frozenset({Scope.OFFERS}))
    assert PUSH_TOKEN not in push.line()
    assert parse_tokens(push.line()) == {push.token_sha256: push}


@pytest.mark.parametrize(
    "line",
    [
        "push offers:read",
        f"push {token_hash('x')} offers:write",
        f"push {'A' * 64} offers:read",
        f"pu/sh {token_hash('x')} offers:read",
        f"push {token_hash('x')} ,",
    ],
    ids=["missing-hash", "unknown-scope", "not-hex", "bad-name", "no-scope"],
)
def test_a_malformed_line_is_reported_with_its_number(line: str) -> None:
    with pytest.raises(TokensFileError, match="line 2"):
        parse_tokens(f"# header\n{line}\n")


def test_a_client_or_token_listed_twice_is_refused() -> None:
    with pytest.raises(TokensFileError, match="twice"):
        parse_tokens(f"a {token_hash('x')} offers:read\nb {token_hash('x')} offers:read\n")
    with pytest.raises(TokensFileError, match="twice"):
        parse_tokens(f"a {token_hash('x')} offers:read\na {token_hash('y')} offers:read\n")


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer   ", None),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
    ],
)
def test_only_a_bearer_header_carries_a_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_no_token_or_a_wrong_one_is_401_and_names_no_client() -> None:
    for header in (None, "Bearer nbo_guess", f"Bearer {token_hash(PUSH_TOKEN)}"):
        verdict = authorise(header, clients(), Scope.OFFERS)
        assert (verdict.status, verdict.client) == (401, None)


def test_a_token_without_the_scope_is_403_and_with_it_passes() -> None:
    assert authorise(f"Bearer {PUSH_TOKEN}", clients(), Scope.DECISIONS).status == 403
    verdict = authorise(f"Bearer {PUSH_TOKEN}", clients(), Scope.OFFERS)
    assert (verdict.status, verdict.client) == (200, "push")
    assert authorise(f"Bearer {SUPPORT_TOKEN}", clients(), Scope.OFFERS).status == 403
    assert authorise(f"Bearer {SUPPORT_TOKEN}", clients(), Scope.DECISIONS).status == 200


def test_unknown_scopes_are_named_when_refused() -> None:
    assert parse_scopes("offers:read, profile:read") == {Scope.OFFERS, Scope.PROFILE}
    with pytest.raises(ValueError, match="known: offers:read"):
        parse_scopes("offers:read,everything")


def test_the_bucket_allows_a_burst_then_the_rate_and_says_how_long_to_wait() -> None:
    bucket = TokenBucket(rate_per_s=2.0, burst=3)
    assert [bucket.take(10.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = bucket.take(10.0)
    assert wait == pytest.approx(0.5)
    assert retry_after(wait) == "1"
    assert bucket.take(10.5) == 0.0  # one more after half a second at 2/s
    assert bucket.take(10.5) > 0
    assert [bucket.take(100.0) for _ in range(3)] == [0.0, 0.0, 0.0]  # refilled, capped
    assert bucket.take(100.0) > 0


def test_a_429_is_held_until_the_clients_next_request_would_pass_queued_behind_those_held() -> None:
    # alone: until its next token; behind 10 held refusals of a 20/s client: half a second more
    assert refusal_hold_s(429, 0.05, 0, 20.0, 1.0) == pytest.approx(0.05)
    assert refusal_hold_s(429, 0.05, 10, 20.0, 1.0) == pytest.approx(0.55)
    assert refusal_hold_s(429, 0.05, 30, 20.0, 1.0) == 1.0  # never beyond the longest hold


def test_a_401_or_403_is_held_the_longest_hold_and_nothing_is_held_at_the_cap_or_when_off() -> None:
    assert refusal_hold_s(401, 0.0, 0, 20.0, 1.0) == 1.0
    assert refusal_hold_s(403, 0.0, HELD_PER_CLIENT - 1, 20.0, 0.5) == 0.5
    assert refusal_hold_s(401, 0.0, HELD_PER_CLIENT, 20.0, 1.0) == 0.0
    assert refusal_hold_s(429, 0.05, 0, 20.0, 0.0) == 0.0
    assert refusal_hold_s(200, 0.0, 0, 20.0, 1.0) == 0.0
