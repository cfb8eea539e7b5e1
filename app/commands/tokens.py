"""``nbo token create | list | revoke``: the API clients of the tokens file.

The file (``NBO_API_TOKENS_FILE``) holds one client a line, the token's SHA-256 and never the
token (:mod:`app.core.access`). ``create`` makes a strong random token, appends the client's
line (the file is created readable by its owner only) and returns the token, which is shown
once and cannot be recovered. ``revoke`` rewrites the file without the client, atomically
(a temporary file renamed over it), so a worker rereading it never sees half a file. Workers
notice a change within a second, without a restart.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from app.core.access import (
    ApiClient,
    Scope,
    new_token,
    parse_client,
    parse_tokens,
    token_hash,
)


class TokenCommandError(ValueError):
    """The request cannot be carried out (the message says why, for the user)."""


def read_clients(path: Path) -> list[ApiClient]:
    """The clients of the file (none when it does not exist), by name."""
    if not path.exists():
        return []
    clients = parse_tokens(path.read_text(encoding="utf-8")).values()
    return sorted(clients, key=lambda c: c.name)


def create_client(path: Path, name: str, scopes: Iterable[Scope]) -> str:
    """Add client ``name`` with ``scopes`` to the file; returns its new token."""
    existing = read_clients(path)
    if any(c.name == name for c in existing):
        raise TokenCommandError(f"a client named {name!r} exists: revoke it first")
    token = new_token()
    try:
        client = parse_client(f"{name} {token_hash(token)} {','.join(s.value for s in scopes)}")
    except ValueError as exc:
        raise TokenCommandError(str(exc)) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)  # also a file made by hand: its owner only
    with os.fdopen(fd, "a", encoding="utf-8") as out:
        if path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n"):
            out.write("\n")
        out.write(client.line() + "\n")
    return token


def revoke_client(path: Path, name: str) -> None:
    """Remove client ``name`` from the file (comments and other lines stay)."""
    if not any(c.name == name for c in read_clients(path)):
        raise TokenCommandError(f"no client named {name!r} in {path}")
    kept = [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.split()[:1] != [name] or line.lstrip().startswith("#")
    ]
    mode = path.stat().st_mode & 0o777
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("".join(line + "\n" for line in kept))
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
