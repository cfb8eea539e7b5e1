"""Every offer a real worker publishes carries a true reason, on every path that makes offers,
read off the topic as an auditor would: a few hundred new users, half of them in the control
group, arriving by a view (personalised or control), by a decision request with no history
at all (cold start) and by a cart left alone until its timer fires (cart abandonment)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.kafka_io import as_json, create_topics_with_catalogue, produce, read_topic
from tests.support.waiting import wait_for
from tests.support.worker import WorkerEnv, WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

VIEWERS, COLD, CARTS = 150, 60, 60
CART_DELAY_S = 3
TITLES = {"o0": "Star voyage", "o1": "Love letters", "o2": "Fast cars"}


def catalogue() -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    genres = [("sci-fi", "space"), ("romance", "drama"), ("action", "cars")]
    items, offers = [], []
    for i, tags in enumerate(genres):
        items.append((f"i{i}".encode(), as_json({"item_id": f"i{i}", "tags": list(tags)})))
        offer = {"offer_id": f"o{i}", "title": TITLES[f"o{i}"], "item_ids": [f"i{i}"],
                 "tags": list(tags), "value": 5.0, "channels": ["push", "in_app"]}  # fmt: skip
        offers.append((f"o{i}".encode(), as_json(offer)))
    return items, offers


async def test_every_offer_published_for_a_few_hundred_new_users_has_a_true_reason(
    kafka_bootstrap: str, redis_url: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    env = WorkerEnv(kafka_bootstrap, redis_url, unique("reasons"))
    env.extra = {
        "NBO_HOLDOUT_SHARE": "0.5",
        "NBO_CART_ABANDON_AFTER_S": str(CART_DELAY_S),
        "NBO_CART_POLL_INTERVAL_S": "0.5",
    }
    s = env.settings()
    await create_topics_with_catalogue(kafka_bootstrap, s, *catalogue())
    viewers = [f"view-{n}-{env.token}" for n in range(VIEWERS)]
    cold = [f"cold-{n}-{env.token}" for n in range(COLD)]
    carts = [f"cart-{n}-{env.token}" for n in range(CARTS)]
    now = int(time.time() * 1000)
    records = []
    for n, user in enumerate(viewers):
        body = {"event_id": f"v{n}", "user_id": user, "type": "view", "item_id": f"i{n % 3}"}
        records.append((user, body))
    for n, user in enumerate(cold):  # never seen: no profile, no history, no consent given
        records.append((user, {"event_id": f"d{n}", "user_id": user,
                               "type": "decision_request", "channel": "in_app"}))  # fmt: skip
    for n, user in enumerate(carts):
        records.append((user, {"event_id": f"c{n}", "user_id": user, "type": "add_to_cart",
                               "item_id": "i1"}))  # fmt: skip
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        await produce(
            kafka_bootstrap,
            s.topic_user_events,
            [(user.encode(), as_json({**body, "ts": now})) for user, body in records],
        )

        # the barrier: a decision recorded for every event and for every cart's fired timer
        log: list[dict[str, Any]] = []

        async def decided() -> bool:
            found = await read_topic(kafka_bootstrap, s.topic_decisions, 10_000, 1.0)
            log[:] = [json.loads(m.value) for m in found]
            fired = {d["user_id"] for d in log if d["trigger"]["type"] == "cart_abandonment"}
            return len(log) >= len(records) + CARTS and fired >= set(carts)

        assert await wait_for(decided, 120), worker.tail()
        messages = [
            json.loads(m.value)
            for m in await read_topic(kafka_bootstrap, s.topic_offers, 10_000, 1.0)
        ]
    finally:
        worker.stop()

    offers = [(m, o) for m in messages for o in m["offers"]]
    # every path made offers, in both groups
    paths = Counter((m["trigger"]["type"], m["group"]) for m in messages)
    for path in ("view", "decision_request", "add_to_cart", "cart_abandonment"):
        assert paths[(path, "personalised")] > 0 and paths[(path, "control")] > 0, paths
    assert {m["user_id"] for m in messages} >= set(cold)  # cold starts were offered something
    # every offer says why, in words
    blank = [(m["user_id"], o["offer_id"]) for m, o in offers if not str(o["reason"]).strip()]
    assert blank == [] and len(offers) >= len(records)
    # true reasons: a fired cart offer about the cart's item speaks of the cart; nothing else
    # does, and no reason names an offer other than its own
    for m, o in offers:
        about_cart = o["reason"] == f"Still thinking about {TITLES['o1']}?"
        fired_for_cart_item = m["trigger"]["type"] == "cart_abandonment" and o["offer_id"] == "o1"
        assert about_cart == fired_for_cart_item, (m["trigger"], o)
        others = [title for offer_id, title in TITLES.items() if offer_id != o["offer_id"]]
        assert not any(title in o["reason"] for title in others), o
    # the control group is not told it was picked for its interests
    control = [o["reason"] for m, o in offers if m["group"] == "control"]
    assert control and not any("interest" in r.lower() for r in control), control
