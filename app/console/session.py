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
