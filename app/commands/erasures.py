"""``nbo erasures restore``: write the erasure markers again from ``privacy-audit``.

A rebuild of Redis from the topics (docs/operations.md) must not bring erased people back. The
markers (``<prefix>:erased:{u:<key_id>}``) normally survive a rebuild, since the runbook keeps
them; when Redis itself was lost, this command restores them before the events are replayed:
it reads the audit topic in full (a plain consumer, no group), keeps the latest erasure time
per user (``erased_at``; ``completed_at`` for records written before that field existed),
skips erasures older than the marker lifetime (``NBO_ERASURE_TTL_S``: their marker would have
expired, and the events they cover with it), and runs the privacy agent's own erase for each
user at that time (the keys deleted, none on an empty Redis, and the marker set to the later
of the stored and the restored time).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from app.core.defaults import ERASURE_TTL_S


def latest_erasures(
    values: Iterable[bytes | None], now_ms: int, ttl_s: int = ERASURE_TTL_S
) -> dict[str, int]:
    """User id -> latest erasure time (epoch ms) of the erase audit records in ``values``,
    without those older than ``ttl_s``; other records and undecodable ones are skipped."""
    oldest = now_ms - ttl_s * 1000
    found: dict[str, int] = {}
    for value in values:
        if not value:
            continue
        try:
            doc = json.loads(value)
        except ValueError:
            continue
        if not isinstance(doc, dict) or doc.get("kind") != "erase":
            continue
        user_id, at = doc.get("user_id"), doc.get("erased_at", doc.get("completed_at"))
        if not isinstance(user_id, str) or not isinstance(at, int) or isinstance(at, bool):
            continue
        if at >= oldest and at > found.get(user_id, 0):
            found[user_id] = at
    return found
