"""A profile's Redis hash fields read back as the profile written."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.core.profile import Profile
from app.storage.profile_codec import decode_profile, profile_fields

pytestmark = pytest.mark.unit


def test_a_profile_reads_back_as_written_with_any_event_id() -> None:
    profile = Profile(
        vec=np.arange(4, dtype=np.float32),
        t_ref_ms=2_000,
        n_events=3,
        updated_at_ms=2_500,
        offsets={0: 7, 3: 9},
        recent_event_ids=(("é-1", 1_000), ('a"b\\c', 1_500), ("e3", 2_000)),
        topic_id="tid",
    )
    fields = dict(profile_fields(profile))
    # compact JSON pairs; earlier versions wrote non-ASCII escaped, and both read the same
    assert json.loads(fields["eids"]) == [list(e) for e in profile.recent_event_ids]
    escaped = json.dumps(profile.recent_event_ids, separators=(",", ":")).encode()
    for eids in (fields["eids"], escaped):
        raw = {k.encode(): v for k, v in {**fields, "eids": eids, "ver": b"4"}.items()}
        back, version = decode_profile(raw, 4)
        assert version == 4 and back == profile
