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


RESTOCK_CATEGORIES = ("grocery", "beauty", "home")
"""Categories whose items may be consumables, bought again and again."""


@dataclass(frozen=True)
class RestockSpec:
    """Planted repurchase cycles (defaults: 60 repeatable items, 600 shoppers, 180 days).

    Each repeatable item has a typical cycle (uniform in ``cycle_days``); each shopper buys
    ``items_per_shopper`` of them (drawn from the shopper's favourite categories when they
    have any, else any), each at a personal cycle (the item's, times a log-normal factor of
    sd ``personal_sd``), every gap jittered by a normal factor of sd ``jitter`` (at least
    a fifth of the cycle). Background browsing (:func:`generate_events`) fills the same span.
    """

    repeatable_items: int = 60
    shoppers: int = 600
    items_per_shopper: tuple[int, int] = (1, 4)
    cycle_days: tuple[float, float] = (4.0, 28.0)
    personal_sd: float = 0.3
    jitter: float = 0.15
    span_days: float = 180.0
    background_events: int = 60_000
    seed: int = 11


@dataclass(frozen=True)
class RestockLog:
    """A shop with repeatable items, its event log (time order) and what was planted."""

    shop: Shop
    events: list[dict[str, Any]]
    item_cycle_ms: dict[str, int]
    """Each repeatable item's typical cycle (the population's, before personal factors)."""
    personal_cycle_ms: dict[tuple[str, str], int]
    """(user, item) -> the shopper's own cycle of the item."""


def restock_log(
    spec: RestockSpec = RestockSpec(), shop_spec: ShopSpec = ShopSpec(), start_ms: int = 0
) -> RestockLog:
    """The synthetic shop of ``shop_spec`` with ``spec.repeatable_items`` consumables marked
    ``repeatable`` and shoppers buying them in cycles, over ``spec.span_days`` from
    ``start_ms``, merged with background browsing; deterministic for the seeds. Event ids are
    ``ev-<n>`` in time order; the planted purchases carry ``context.planted = true``."""
    shop = build_shop(shop_spec)
    rng = np.random.default_rng(spec.seed)
    day = 86_400_000
    span = int(spec.span_days * day)
    consumable = np.flatnonzero(
        np.isin(shop.item_category, [CATEGORIES.index(c) for c in RESTOCK_CATEGORIES])
    )
    count = min(spec.repeatable_items, len(consumable))
    chosen = np.sort(rng.choice(consumable, size=count, replace=False))
    items = [dict(item) for item in shop.items]
    item_cycle: dict[str, int] = {}
    low, high = spec.cycle_days
    for i in chosen.tolist():
        items[i]["repeatable"] = True
        item_cycle[items[i]["item_id"]] = int(rng.uniform(low, high) * day)
    shop = Shop(items, shop.offers, shop.users, shop.item_category, shop.item_brand,
                shop.user_categories)  # fmt: skip
    by_category = {c: [i for i in chosen.tolist() if int(shop.item_category[i]) == c]
                   for c in {int(shop.item_category[i]) for i in chosen.tolist()}}  # fmt: skip
    shoppers = rng.choice(len(shop.users), size=min(spec.shoppers, len(shop.users)), replace=False)
    planted: list[dict[str, Any]] = []
    personal: dict[tuple[str, str], int] = {}
    for u in np.sort(shoppers).tolist():
        user = shop.users[u]
        liked = [i for c in shop.user_categories[u].tolist() for i in by_category.get(int(c), [])]
        pool = liked or chosen.tolist()
        n = min(int(rng.integers(spec.items_per_shopper[0], spec.items_per_shopper[1] + 1)),
                len(pool))  # fmt: skip
        for i in sorted(rng.choice(pool, size=n, replace=False).tolist()):
            item = items[i]
            cycle = max(
                day, int(item_cycle[item["item_id"]] * rng.lognormal(0.0, spec.personal_sd))
            )
            personal[(user, item["item_id"])] = cycle
            t = int(rng.uniform(0, cycle))
            while t < span:
                planted.append(
                    {"user_id": user, "type": "purchase", "item_id": item["item_id"],
                     "ts": start_ms + t, "value": item["price"],
                     "context": {"planted": True}}
                )  # fmt: skip
                t += int(cycle * max(0.2, 1.0 + rng.normal(0.0, spec.jitter)))
    background = list(generate_events(shop, spec.background_events, start_ms, span, seed=spec.seed))
    merged = sorted(
        [*background, *planted], key=lambda e: (e["ts"], e["user_id"], e.get("item_id", ""))
    )
    events = []
    for n, event in enumerate(merged):
        events.append({**event, "event_id": f"ev-{n:08d}"})
    return RestockLog(shop, events, item_cycle, personal)
