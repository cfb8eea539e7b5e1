"""The Redis hash layout of a user's profile (``nbo:{u:<id>}:profile``), both directions.

Fields: ``vec`` (D little-endian float32), ``n_events``, ``updated_at`` (ms, when last changed),
``t_ref`` (event time the vector is expressed at, ms), ``ver`` (compare-and-set version, written
by the commit script), ``o:<partition>`` (highest applied Kafka offset of that partition) and
``eids`` (recent event ids with their event times, JSON ``[[id, ts_ms], ...]``) for idempotency,
``tid`` (the Kafka topic id of the events topic the offsets belong to; absent if unknown),
and ``rs`` (the repurchase cycles of repeatable items, JSON ``[[item_id, last_ms,
interval_ms, purchases], ...]``, :mod:`app.core.restock`; absent when none).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import msgspec

from app.core.profile import Profile
from app.core.restock import cycles_from_json, cycles_to_json
from app.core.vectors import vec_from_bytes, vec_to_bytes

OFFSET_PREFIX = "o:"
_encode = msgspec.json.Encoder().encode
"""Compact JSON (``[["id",ts],...]``), as ``json.dumps`` with tight separators writes it, but
with non-ASCII kept as UTF-8 rather than escaped; both read back the same."""


def profile_fields(profile: Profile) -> list[tuple[str, bytes]]:
    """The hash fields of ``profile`` (without ``ver``, which the commit script owns)."""
    fields: list[tuple[str, bytes]] = [
        ("vec", vec_to_bytes(profile.vec)),
        ("n_events", str(profile.n_events).encode()),
        ("updated_at", str(profile.updated_at_ms).encode()),
        ("t_ref", str(profile.t_ref_ms).encode()),
        ("eids", _encode(profile.recent_event_ids)),
    ]
    if profile.topic_id:
        fields.append(("tid", profile.topic_id.encode()))
    if profile.restock:
        fields.append(("rs", cycles_to_json(profile.restock)))
    fields.extend(
        (f"{OFFSET_PREFIX}{partition}", str(offset).encode())
        for partition, offset in sorted(profile.offsets.items())
    )
    return fields


def decode_profile(raw: Mapping[bytes, bytes], dim: int) -> tuple[Profile | None, int]:
    """``(profile, version)`` from an HGETALL reply; ``(None, version)`` when it has no vector.

    A vector whose length is not ``dim`` (the dimension was changed) is dropped: the profile
    starts again from zero but keeps its offsets and ids, so nothing is applied twice.
    """
    fields = {k.decode(): v for k, v in raw.items()}
    version = int(fields.get("ver", b"0"))
    if "n_events" not in fields:
        return None, version
    offsets = {
        int(name[len(OFFSET_PREFIX) :]): int(value)
        for name, value in fields.items()
        if name.startswith(OFFSET_PREFIX)
    }
    vec_raw = fields.get("vec", b"")
    vec = vec_from_bytes(vec_raw, dim) if len(vec_raw) == 4 * dim else None
    empty = Profile.empty(dim)
    recent = tuple((str(eid), int(ts)) for eid, ts in json.loads(fields.get("eids", b"[]")))
    profile = Profile(
        vec=vec if vec is not None else empty.vec,
        t_ref_ms=int(fields.get("t_ref", b"0")),
        n_events=int(fields["n_events"]),
        updated_at_ms=int(fields.get("updated_at", b"0")),
        offsets=offsets,
        recent_event_ids=recent,
        topic_id=fields.get("tid", b"").decode(),
        restock=cycles_from_json(fields["rs"]) if "rs" in fields else {},
    )
    return profile, version
