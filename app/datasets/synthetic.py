"""A synthetic but realistic shop: catalogue, users with stable tastes, sessions of events.

Deterministic for a seed. Item popularity is Zipf-distributed within each category; each user
has two or three favourite categories and a few favourite brands, and browses in sessions
(views, then sometimes clicks, carts, purchases, likes and ratings). Times are epoch ms.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

CATEGORIES = (
    "electronics", "books", "fashion", "home", "sports", "toys",
    "beauty", "grocery", "garden", "music", "movies", "games",
)  # fmt: skip
ATTRIBUTES = ("premium", "budget", "eco", "new", "bestseller", "handmade", "kids", "outdoor")
CHANNELS = ("email", "push", "sms", "in_app", "web")


@dataclass(frozen=True)
class ShopSpec:
    """Sizes of the synthetic shop (defaults: 1,200 items, 240 offers, 2,000 users)."""

    items: int = 1_200
    offers: int = 240
    users: int = 2_000
    brands_per_category: int = 6
    zipf_a: float = 1.2
    seed: int = 42


@dataclass(frozen=True)
class Shop:
    """The generated catalogue (wire-format dicts) and the hidden tastes of the users."""

    items: list[dict[str, Any]]
    offers: list[dict[str, Any]]
    users: list[str]
    item_category: np.ndarray
    item_brand: list[str]
    user_categories: list[np.ndarray]


def build_shop(spec: ShopSpec = ShopSpec()) -> Shop:
    """Items with category, brand and attribute tags; offers of single items and promotions."""
    rng = np.random.default_rng(spec.seed)
    n_cat = len(CATEGORIES)
    item_category = rng.integers(0, n_cat, size=spec.items)
    items: list[dict[str, Any]] = []
    brands: list[str] = []
    for i in range(spec.items):
        category = CATEGORIES[int(item_category[i])]
        brand = f"{category}-brand-{int(rng.integers(spec.brands_per_category))}"
        attrs = list(rng.choice(ATTRIBUTES, size=int(rng.integers(0, 3)), replace=False))
        brands.append(brand)
        items.append(
            {
                "item_id": f"item-{i:05d}",
                "title": f"{brand.replace('-', ' ').title()} {category} #{i}",
                "tags": [category, brand, *attrs],
                "price": round(float(rng.lognormal(3.0, 0.8)), 2),
            }
        )
    offers: list[dict[str, Any]] = []
    for o in range(spec.offers):
        # every offer can be shown on a site or app channel (allowed without an opt-in);
        # email, push and sms reach only users who consented
        onsite = str(rng.choice(("in_app", "web")))
        channels = sorted({onsite, *rng.choice(CHANNELS, size=int(rng.integers(0, 3)))})
        if o % 4 == 0:  # a category promotion
            category = CATEGORIES[o // 4 % n_cat]
            offers.append(
                {
                    "offer_id": f"offer-{o:04d}",
                    "title": f"{int(rng.integers(10, 40))}% off {category}",
                    "item_ids": [],
                    "tags": [category, "promotion"],
                    "value": round(float(rng.uniform(2, 15)), 2),
                    "channels": channels,
                    "priority": int(rng.integers(0, 3)),
                }
            )
        else:  # an item recommendation
            item = items[int(rng.integers(spec.items))]
            offers.append(
                {
                    "offer_id": f"offer-{o:04d}",
                    "title": f"Try {item['title']}",
                    "item_ids": [item["item_id"]],
                    "tags": item["tags"],
                    "value": round(item["price"] * 0.1, 2),
                    "channels": channels,
                }
            )
    users = [f"user-{u:05d}" for u in range(spec.users)]
    tastes = [
        rng.choice(n_cat, size=int(rng.integers(2, 4)), replace=False) for _ in range(spec.users)
    ]
    return Shop(items, offers, users, item_category, brands, tastes)


def generate_events(
    shop: Shop, n_events: int, start_ms: int, span_ms: int = 7 * 86_400_000, seed: int = 7
) -> Iterator[dict[str, Any]]:
    """``n_events`` UserEvent dicts in time order over ``[start_ms, start_ms + span_ms)``."""
    rng = np.random.default_rng(seed)
    by_category = [np.flatnonzero(shop.item_category == c) for c in range(len(CATEGORIES))]
    weights = []
    for members in by_category:
        ranks = np.arange(1, len(members) + 1, dtype=np.float64)
        w = ranks**-1.2
        weights.append(w / w.sum())
    user_activity = rng.zipf(1.5, size=len(shop.users)).astype(np.float64)
    user_activity = np.minimum(user_activity, 50)
    user_activity /= user_activity.sum()
    produced = 0
    session = 0
    step = span_ms / max(n_events, 1)
    while produced < n_events:
        u = int(rng.choice(len(shop.users), p=user_activity))
        user = shop.users[u]
        length = int(rng.integers(3, 16))
        for _ in range(min(length, n_events - produced)):
            category = int(rng.choice(shop.user_categories[u]))
            members = by_category[category]
            item = shop.items[int(members[rng.choice(len(members), p=weights[category])])]
            kind = str(
                rng.choice(
                    ["view", "click", "add_to_cart", "purchase", "like", "rating", "dislike"],
                    p=[0.55, 0.2, 0.08, 0.04, 0.06, 0.05, 0.02],
                )
            )
            event: dict[str, Any] = {
                "event_id": f"ev-{produced:08d}",
                "user_id": user,
                "type": kind,
                "item_id": item["item_id"],
                "ts": start_ms + int(produced * step),
                "context": {"session": f"s-{session}"},
            }
            if kind == "rating":
                event["rating"] = float(rng.choice([3.5, 4.0, 4.5, 5.0]))
            if kind == "purchase":
                event["value"] = item["price"]
            produced += 1
            yield event
        session += 1
