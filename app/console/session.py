"""The console's session cookie: signed, not encrypted, holding no secret.

A session is ``<client name>.<expiry, Unix seconds>.<HMAC-SHA256 of both, URL-safe base64>``,
signed with ``NBO_CONSOLE_SECRET`` or a random per-process key. It carries the API client's
name, never the token; the web layer checks on every request that the client is still in the
tokens file with the ``console`` scope, so revoking a token ends its sessions.

Pure: the caller passes the time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

COOKIE_NAME = "nbo_console"
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}\Z")  # \Z: no newline before the end
KEY_BYTES = 32


def new_key() -> bytes:
    """A random signing key (used when ``NBO_CONSOLE_SECRET`` is unset)."""
    return secrets.token_bytes(KEY_BYTES)


@dataclass(frozen=True)
class Session:
    client: str
    expires_s: int


def _signature(key: bytes, payload: str) -> str:
    digest = hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def sign(key: bytes, session: Session) -> str:
    """The cookie value of ``session``."""
    if not _NAME.match(session.client):
        raise ValueError("bad client name")
    payload = f"{session.client}.{session.expires_s}"
    return f"{payload}.{_signature(key, payload)}"


def verify(key: bytes, value: str | None, now_s: float) -> Session | None:
    """The session of a cookie value, or ``None`` when absent, forged, malformed or expired."""
    if not value or len(value) > 256:
        return None
    payload, _, signature = value.rpartition(".")
    client, _, expires = payload.rpartition(".")
    if not (_NAME.match(client) and expires.isdigit()):
        return None
    if not hmac.compare_digest(_signature(key, payload), signature):
        return None
    session = Session(client, int(expires))
    return session if session.expires_s > now_s else None


CSRF_FIELD = "csrf"
"""The hidden form field that carries the CSRF token."""
_CSRF_LABEL = "nbo-console:csrf:v1\x1f"


def csrf_token(key: bytes, cookie_value: str) -> str:
    """The CSRF token of a session: the HMAC-SHA256 of its cookie value with the console key
    (a label keeps it apart from the cookie's own signature). A page of another site cannot
    read the cookie, so it cannot compute the token; a token is good for one session only."""
    message = (_CSRF_LABEL + cookie_value).encode("utf-8")
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def csrf_ok(key: bytes, cookie_value: str | None, token: str | None) -> bool:
    """Whether ``token`` (a form's :data:`CSRF_FIELD`) belongs to the session of
    ``cookie_value`` (both must be present; compared in constant time)."""
    if not cookie_value or not token or len(token) > 128:
        return False
    return hmac.compare_digest(csrf_token(key, cookie_value).encode(), token.encode("utf-8"))
