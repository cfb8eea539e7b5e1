"""A tokens file (``NBO_API_TOKENS_FILE``) with clients of known tokens, for tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from app.core.access import ApiClient, Scope, client_lines, token_hash


def write_clients(path: Path, clients: Mapping[str, tuple[str, Iterable[Scope]]]) -> Path:
    """Write ``path`` with one client per entry, ``name: (token, scopes)``; returns ``path``."""
    lines = client_lines(
        ApiClient(name, token_hash(token), frozenset(scopes))
        for name, (token, scopes) in clients.items()
    )
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path
