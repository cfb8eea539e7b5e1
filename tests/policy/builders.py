"""Builders shared by the policy unit tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.core.catalog_records import Offer
from app.core.enums import Channel
from app.core.events import UserEvent
from app.core.ranked import ScoredOffer
from app.policy.config import ContactPolicy, default_policy
from app.policy.consent import ConsentRecord

HOUR = 3_600_000
DAY = 24 * HOUR
WEEK = 7 * DAY


def at(iso: str) -> int:
    """Epoch ms of an ISO date-time with offset."""
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


NOON = at("2024-01-15T12:00:00+00:00")
"""A Monday noon UTC in winter (London = UTC, Tokyo = UTC+9 = 21:00)."""


def offer(offer_id: str, *channels: str, transactional: bool = False) -> Offer:
    return Offer(offer_id=offer_id, title=offer_id, channels=channels, transactional=transactional)


def scored(offer_: Offer, score: float = 1.0) -> ScoredOffer:
    parts = {"affinity": score, "value": 0.0, "popularity": 0.0, "priority": 0.0}
    return ScoredOffer(offer_, score, parts, "")


def ranked(*offers: Offer) -> list[ScoredOffer]:
    """Offers as candidates, best first (descending scores)."""
    return [scored(o, 1.0 - i / 100) for i, o in enumerate(offers)]


def consent(
    channels: dict[str, bool] | None = None, *, ts: int = 0, **fields: Any
) -> ConsentRecord:
    return ConsentRecord.model_validate(
        {"user_id": "u1", "channels": channels or {}, "ts": ts, **fields}
    )


def offer_event(
    kind: str, offer_id: str = "o1", ts: int = NOON, channel: Channel | str | None = None
) -> UserEvent:
    return UserEvent.model_validate(
        {
            "event_id": f"{kind}-{offer_id}-{ts}",
            "user_id": "u1",
            "type": kind,
            "offer_id": offer_id,
            "channel": channel,
            "ts": ts,
        }
    )


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def policy(**overrides: Any) -> ContactPolicy:
    """The default policy with TOML-shaped tables overridden (deep merge)."""
    base = default_policy().model_dump(by_alias=True, mode="json")
    return ContactPolicy.model_validate(_merge(base, overrides))
