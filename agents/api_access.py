"""Access control of the ``/users`` lookups (``nbo api``): bearer tokens, scopes, rate limits.

:class:`ApiAccess` holds the API clients of ``NBO_API_TOKENS_FILE`` (rereading the file when
its size, modification time or inode changes, checked at most once a second, so ``nbo token
create / revoke`` and a rotated Kubernetes Secret apply without a restart), answers each
request with :func:`app.core.access.authorise`, then charges the client's token bucket
(``NBO_API_RATE_PER_S``, ``NBO_API_BURST``). A file that does not parse refuses everyone
(fail closed) and says so in the log. A refusal is held back before it is answered
(:func:`app.core.access.refusal_hold_s`, at most ``NBO_API_REFUSAL_HOLD_S``), so a client that
floods the lookups, or guesses tokens, gets its answers at about its rate and cannot make this
process spend its CPU on thousands of refusals a second. Each answer is logged (client,
endpoint, status; never the token) and counted in
``nbo_api_requests_total{client,endpoint,status}``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter

from app.core.access import (
    ApiClient,
    Scope,
    TokenBucket,
    TokensFileError,
    Verdict,
    authorise,
    parse_tokens,
    refusal_hold_s,
    retry_after,
)

log = logging.getLogger("nbo.access")

RELOAD_CHECK_S = 1.0
"""How often, at most, the tokens file is checked for a change (seconds)."""
ANONYMOUS = "-"
"""The client label of a request without a known token."""


@dataclass(frozen=True)
class Answer:
    """What to reply: ``status`` 200 (serve the request), 401, 403 or 429, with ``error`` and
    ``retry_after`` (a ``Retry-After`` value) when refused."""

    status: int
    client: str
    error: str | None = None
    retry_after: str | None = None
    wait_s: float = 0.0
    """For a 429: the seconds until the client's next request would be let through."""


@dataclass
class ApiAccess:
    """Bearer-token access to the lookups (see module doc)."""

    path: Path | None
    rate_per_s: float
    burst: int
    registry: CollectorRegistry
    clock: Callable[[], float] = time.monotonic
    hold_max_s: float = 0.0
    """The longest a refusal is held back (``NBO_API_REFUSAL_HOLD_S``; 0: answered at once)."""
    _held: Tally[str] = field(default_factory=Tally)
    _clients: dict[str, ApiClient] = field(default_factory=dict)
    _stamp: tuple[int, int, int] | None = None
    _checked_s: float = float("-inf")
    _buckets: dict[str, TokenBucket] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "nbo_api_requests",
            "Lookups answered, by API client, endpoint and status",
            ["client", "endpoint", "status"],
            registry=self.registry,
        )
        self.held_total = Counter(
            "nbo_api_refusals_held",
            "Refused lookups whose answers were held back, by API client",
            ["client"],
            registry=self.registry,
        )
        self._reload(force=True)

    def _reload(self, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self._checked_s < RELOAD_CHECK_S:
            return
        self._checked_s = now
        if self.path is None:
            return
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self._stamp is not None or force:
                log.error("API tokens file %s is missing: every lookup is refused", self.path)
            self._clients, self._stamp = {}, None
            return
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == self._stamp and not force:
            return
        self._stamp = stamp
        try:
            self._clients = parse_tokens(self.path.read_text(encoding="utf-8"))
        except (TokensFileError, OSError, UnicodeDecodeError) as exc:
            log.error(
                "API tokens file %s is unusable (%s): every lookup is refused", self.path, exc
            )
            self._clients = {}
            return
        log.info("API tokens file %s: %d clients", self.path, len(self._clients))

    def check(self, header: str | None, needed: Scope, endpoint: str) -> Answer:
        """The answer to a request with ``Authorization`` header ``header`` to ``endpoint``,
        which needs ``needed``. A refusal is logged and counted here; a request let through
        is, with its final status, by :meth:`record` once served."""
        self._reload()
        verdict: Verdict = authorise(header, self._clients, needed)
        client = verdict.client or ANONYMOUS
        if verdict.status != 200:
            answer = Answer(verdict.status, client, verdict.error)
        else:
            wait = self.charge(client)
            if wait > 0:
                answer = Answer(429, client, "too many requests", retry_after(wait), wait)
            else:
                return Answer(200, client)
        self.record(answer, endpoint)
        return answer

    async def hold(self, answer: Answer) -> bool:
        """Hold refusal ``answer`` back as :func:`~app.core.access.refusal_hold_s` says; False
        when it is answered at once because too many of the client's are held already (then
        close the connection with it)."""
        held = self._held[answer.client]
        seconds = refusal_hold_s(
            answer.status, answer.wait_s, held, self.rate_per_s, self.hold_max_s
        )
        if seconds <= 0:  # nothing to hold, or the client's refusals held are at the cap
            return answer.status < 400 or self.hold_max_s <= 0
        self.held_total.labels(client=answer.client).inc()
        self._held[answer.client] += 1
        try:
            await asyncio.sleep(seconds)
        finally:
            self._held[answer.client] -= 1
            if self._held[answer.client] <= 0:
                del self._held[answer.client]
        return True

    def held(self, client: str) -> int:
        """Refusals of ``client`` being held back now."""
        return self._held[client]

    def charge(self, client: str) -> float:
        """Take one request from ``client``'s token bucket: 0 when allowed, else the seconds
        to wait (the console charges its person lookups to the session's client so)."""
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = self._buckets[client] = TokenBucket(self.rate_per_s, self.burst)
        return bucket.take(self.clock())

    def scopes_of(self, name: str) -> frozenset[Scope]:
        """The scopes client ``name`` holds in the tokens file now (empty: not listed, or the
        file is unusable); lets a session opened with a token end when it is revoked."""
        self._reload()
        for client in self._clients.values():
            if client.name == name:
                return client.scopes
        return frozenset()

    def record(
        self, answer: Answer, endpoint: str, status: int | None = None, detail: str = ""
    ) -> None:
        """Log and count one answer (``status``: the final one, when the request was served;
        ``detail``: more ``key=value`` words for the log line, e.g. the console's
        ``person=<keyed hash>``; never counted, so never a label)."""
        code = status if status is not None else answer.status
        self.requests.labels(client=answer.client, endpoint=endpoint, status=str(code)).inc()
        if detail:
            log.info("client=%s endpoint=%s status=%d %s", answer.client, endpoint, code, detail)
        else:
            log.info("client=%s endpoint=%s status=%d", answer.client, endpoint, code)
