"""The benchmark workload: a catalogue and pre-built event records of about 300 bytes.

Deterministic for a seed. Events come from the synthetic shop (Zipf item popularity, users with
stable tastes, sessions), with a realistic context (page, device, app version, referrer) so an
event weighs about 300 bytes on the wire.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from app.datasets.synthetic import ShopSpec, build_shop, generate_events

DEVICES = ("ios", "android", "web-desktop", "web-mobile")


@dataclass(frozen=True)
class WorkloadSpec:
    """Sizes (defaults from the issue: 200,000 events, 10,000 users, 1,000 offers)."""

    events: int = 200_000
    users: int = 10_000
    offers: int = 1_000
    items: int = 5_000
    seed: int = 42


@dataclass(frozen=True)
class Workload:
    """Catalogue records and event records (key, value) ready to produce."""

    spec: WorkloadSpec
    items: list[dict[str, Any]]
    offers: list[dict[str, Any]]
    events: list[tuple[bytes, bytes]]

    @property
    def mean_event_bytes(self) -> float:
        return sum(len(v) for _, v in self.events) / max(len(self.events), 1)


SPAN_MS = 7 * 86_400_000
"""Event time the workload spans, from its start: start it at least this long ago, so that no
event is dated ahead of the worker's clock (it would be dead-lettered as FutureTimestamp)."""


def _dress(event: dict[str, Any], n: int) -> dict[str, Any]:
    item = event.get("item_id", "")
    event["context"] = {
        **event.get("context", {}),
        "page": f"/shop/{item}?ref=home-carousel&pos={n % 24}",
        "device": DEVICES[n % len(DEVICES)],
        "app_version": f"7.{n % 13}.{n % 7}",
        "referrer": "https://www.example.com/landing/autumn-sale",
        "locale": "en-GB",
    }
    return event


def build_workload(spec: WorkloadSpec, start_ms: int) -> Workload:
    """The catalogue and ``spec.events`` events starting at ``start_ms`` (event time)."""
    shop = build_shop(
        ShopSpec(items=spec.items, offers=spec.offers, users=spec.users, seed=spec.seed)
    )
    events = [
        (str(e["user_id"]).encode(), json.dumps(_dress(e, n), separators=(",", ":")).encode())
        for n, e in enumerate(
            generate_events(shop, spec.events, start_ms, span_ms=SPAN_MS, seed=spec.seed)
        )
    ]
    return Workload(spec, shop.items, shop.offers, events)
