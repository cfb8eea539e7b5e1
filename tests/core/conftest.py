"""Shared builders of the core unit tests."""

from __future__ import annotations

import json
from typing import Any

import pytest


def event_json(**overrides: Any) -> bytes:
    """A valid ``view`` event as JSON bytes, with fields overridden (``None`` removes one)."""
    body: dict[str, Any] = {
        "event_id": "e-1",
        "user_id": "user-1",
        "type": "view",
        "item_id": "item-1",
        "ts": 1_714_564_800_000,
    }
    for key, value in overrides.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return json.dumps(body).encode("utf-8")


@pytest.fixture
def make_event_json() -> Any:
    """The :func:`event_json` builder."""
    return event_json
