"""Who may read personal data over HTTP: API clients, their scopes, and how fast they may ask.

Tokens are never stored: an API client is a line of the tokens file (``NBO_API_TOKENS_FILE``)
``<name> <sha256 hex of the token> <scope>[,<scope>...]``; blank lines and lines starting with
``#`` are ignored. A request presents ``Authorization: Bearer <token>``; the token's SHA-256
is looked up (so comparing against a stored value leaks nothing through timing: an attacker
cannot steer the hash). :func:`authorise` answers 401 for a missing or unknown token, 403 for
a known client without the scope the endpoint needs. :class:`TokenBucket` limits each client
to a steady rate with a burst.

Plain Python: no I/O here (the file is read by the caller).
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Scope(StrEnum):
    """What a client may read."""

    OFFERS = "offers:read"
    """A person's current offers (``/users/{id}/offers``): what a channel service needs."""
    PROFILE = "profile:read"
    """A person's preference profile (``/users/{id}/profile``)."""
    DECISIONS = "decisions:read"
    """A person's decision trail (``/users/{id}/decisions``): why this, or nothing."""
    CONSOLE = "console"
    """The operator web console (``nbo console``): aggregate figures and the policy in force;
    its person page also needs :attr:`DECISIONS`."""


TOKEN_PREFIX = "nbo_"
"""Marks a token of this system (helps secret scanners and people)."""
TOKEN_BYTES = 32
"""Random bytes of a token (256 bits)."""
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def new_token() -> str:
    """A new random token (``nbo_`` + 43 URL-safe characters)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """The SHA-256 (hex) of a token, as stored in the tokens file."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ApiClient:
    """One line of the tokens file."""

    name: str
    token_sha256: str
    scopes: frozenset[Scope]

    def line(self) -> str:
        """The client as a line of the tokens file."""
        scopes = ",".join(sorted(s.value for s in self.scopes))
        return f"{self.name} {self.token_sha256} {scopes}"


class TokensFileError(ValueError):
    """A line of the tokens file is malformed (the message names the line)."""


def parse_scopes(text: str) -> frozenset[Scope]:
    """``offers:read,profile:read`` -> the scopes; raises ``ValueError`` on an unknown one."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise ValueError("no scope given")
    try:
        return frozenset(Scope(name) for name in names)
    except ValueError:
        known = ", ".join(s.value for s in Scope)
        raise ValueError(f"unknown scope in {text!r} (known: {known})") from None


def parse_client(line: str) -> ApiClient:
    """One non-comment line; raises ``ValueError``."""
    parts = line.split()
    if len(parts) != 3:
        raise ValueError("expected '<name> <sha256> <scope>[,<scope>...]'")
    name, digest, scopes = parts
    if not _NAME.match(name):
        raise ValueError(f"bad client name {name[:64]!r}")
    if not _SHA256.match(digest):
        raise ValueError("the token hash is not 64 lowercase hex digits")
    return ApiClient(name, digest, parse_scopes(scopes))


def parse_tokens(text: str) -> dict[str, ApiClient]:
    """The clients of a tokens file by token hash; raises :class:`TokensFileError` naming the
    first bad line, or a repeated name or hash."""
    by_hash: dict[str, ApiClient] = {}
    names: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            client = parse_client(line)
        except ValueError as exc:
            raise TokensFileError(f"line {number}: {exc}") from None
        if client.name in names or client.token_sha256 in by_hash:
            raise TokensFileError(f"line {number}: client or token listed twice")
        names.add(client.name)
        by_hash[client.token_sha256] = client
    return by_hash


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (``None``: none given)."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


@dataclass(frozen=True)
class Verdict:
    """The answer to one request: ``status`` 200 (go on), 401 or 403; ``client`` the
    client's name when the token is known."""

    status: int
    client: str | None = None
    error: str | None = None


def authorise(header: str | None, clients: Mapping[str, ApiClient], needed: Scope) -> Verdict:
    """Whether the bearer of ``header`` may use an endpoint that needs ``needed``."""
    token = bearer_token(header)
    if token is None:
        return Verdict(401, error="a bearer token is required")
    client = clients.get(token_hash(token))
    if client is None:
        return Verdict(401, error="the token is not valid")
    if needed not in client.scopes:
        return Verdict(403, client.name, f"the token lacks the scope {needed.value}")
    return Verdict(200, client.name)


@dataclass
class TokenBucket:
    """``rate_per_s`` requests a second on average, ``burst`` at once (times in seconds)."""

    rate_per_s: float
    burst: float
    tokens: float = field(default=-1.0)
    updated_s: float = 0.0

    def take(self, now_s: float) -> float:
        """Take one request at ``now_s``: 0 when allowed, else the seconds to wait."""
        if self.tokens < 0:  # first use: a full bucket
            self.tokens, self.updated_s = self.burst, now_s
        elapsed = max(0.0, now_s - self.updated_s)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate_per_s)
        self.updated_s = now_s
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate_per_s


HELD_PER_CLIENT = 64
"""Refusals of one client (the anonymous ones count as one) held back at once; a refusal
beyond them is answered at once and its connection closed."""


def refusal_hold_s(
    status: int, wait_s: float, held: int, rate_per_s: float, hold_max_s: float
) -> float:
    """How long to hold back a refusal before answering it: a client that floods the lookups
    (or guesses tokens) then waits for its answers instead of making the server spend its CPU
    on more of them. A 429 is held until the client's next request would be let through,
    counting the refusals of that client already held as queued before it (so one connection
    or many, a client's refusals come at about its rate); a 401 or 403 for ``hold_max_s``.
    Never more than ``hold_max_s``; 0 (answer at once) when ``held`` reached
    :data:`HELD_PER_CLIENT` or ``hold_max_s`` is 0."""
    if hold_max_s <= 0 or held >= HELD_PER_CLIENT or status < 400:
        return 0.0
    if status == 429:
        return min(hold_max_s, wait_s + held / rate_per_s)
    return hold_max_s


def retry_after(wait_s: float) -> str:
    """The ``Retry-After`` value (whole seconds, at least 1) for a wait."""
    return str(max(1, math.ceil(wait_s)))


def client_lines(clients: Iterable[ApiClient]) -> list[str]:
    """The clients as lines of a tokens file, sorted by name."""
    return [c.line() for c in sorted(clients, key=lambda c: c.name)]
