"""The contact policy in a real worker, driven through a real broker and checked in Redis.

Bursts against caps, consent given and revoked through the ``user-consent`` topic, quiet
hours in the user's time zone, the decision log (topic and HTTP) explaining a suppressed
user, and cart-abandonment timers that fire once, never after a purchase, and across a worker
restart. Quiet hours depend on the wall clock, so each user's time zone is chosen from the
current UTC hour: ``day_zone()`` is mid-afternoon there, ``night_zone()`` the middle of the
night.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from app.pipeline.config import pipeline_config
from app.storage.keys import user_keys
from tests.support.barrier import markers_applied, produce_markers
from tests.support.calibration import calibration_for
from tests.support.kafka_io import as_json, create_topics_with_catalogue, produce, read_topic
from tests.support.worker import ApiProcess, WorkerEnv, WorkerProcess

pytestmark = pytest.mark.integration

CART_DELAY_S = 3


def zone_at(local_hour: int) -> str:
    """An ``Etc/GMT`` zone whose local hour is ``local_hour`` now (UTC-11 .. UTC+12)."""
    offset = (local_hour - datetime.now(UTC).hour + 24) % 24
    offset = offset - 24 if offset > 12 else offset
    # Etc/GMT-N is N hours *ahead* of UTC (POSIX sign)
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


def day_zone() -> str:
    return zone_at(14)


def night_zone() -> str:
    return zone_at(2)


def now_ms() -> int:
    return int(time.time() * 1000)


class Scenario:
    def __init__(self, env: WorkerEnv) -> None:
        self.env = env
        self.settings = env.settings()
        self.bootstrap = env.kafka_bootstrap
        self.n = 0

    def user(self, name: str) -> str:
        return f"{name}-{self.env.token}"

    async def events(self, user: str, *specs: tuple[str, str | None]) -> None:
        records = []
        for kind, item in specs:
            self.n += 1
            body: dict[str, Any] = {"event_id": f"ev{self.n}", "user_id": user, "type": kind,
                                    "ts": now_ms()}  # fmt: skip
            if item is not None:
                body["item_id"] = item
            if kind == "decision_request":
                body["channel"] = "push"
            records.append((user.encode(), as_json(body)))
        await produce(self.bootstrap, self.settings.topic_user_events, records)

    async def consent(self, user: str, tz: str, **channels: bool) -> None:
        record = {"user_id": user, "channels": channels, "tz": tz, "ts": now_ms(),
                  "source": "test"}  # fmt: skip
        await produce(self.bootstrap, self.settings.topic_user_consent,
                      [(user.encode(), as_json(record))])  # fmt: skip

    async def messages(self, user: str, settle_s: float = 3.0) -> list[dict[str, Any]]:
        found = await read_topic(self.bootstrap, self.settings.topic_offers, 10_000, settle_s)
        return [json.loads(m.value) for m in found if m.key == user.encode()]

    async def decisions(self, user: str, settle_s: float = 3.0) -> list[dict[str, Any]]:
        found = await read_topic(self.bootstrap, self.settings.topic_decisions, 10_000, settle_s)
        return [json.loads(m.value) for m in found if m.key == user.encode()]

    async def wait_for(
        self, what: Callable[[], Any], timeout_s: float = 30.0, label: str = ""
    ) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            result = await what()
            if result:
                return result
            await asyncio.sleep(0.3)
        raise AssertionError(f"timed out waiting for {label}")


def catalogue(scenario: Scenario) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    genres = [("sci-fi", "space"), ("romance", "drama"), ("action", "cars")]
    items, offers = [], []
    for i, tags in enumerate(genres):
        items.append((f"i{i}".encode(), as_json({"item_id": f"i{i}", "tags": list(tags)})))
        offer = {"offer_id": f"o{i}", "title": f"Offer {i}", "item_ids": [f"i{i}"],
                 "tags": list(tags), "value": 5.0, "channels": ["push", "in_app"]}  # fmt: skip
        offers.append((f"o{i}".encode(), as_json(offer)))
    return items, offers


@pytest.fixture
def worker_env(kafka_bootstrap: str, redis_url: str, unique: Callable[[str], str]) -> WorkerEnv:
    env = WorkerEnv(kafka_bootstrap, redis_url, unique("dec"))
    env.extra = {"NBO_CART_ABANDON_AFTER_S": str(CART_DELAY_S), "NBO_CART_POLL_INTERVAL_S": "0.5"}
    return env


async def prepare(env: WorkerEnv) -> Scenario:
    scenario = Scenario(env)
    s = scenario.settings
    await create_topics_with_catalogue(scenario.bootstrap, s, *catalogue(scenario))
    return scenario


async def test_caps_consent_quiet_hours_and_the_decision_log(
    worker_env: WorkerEnv, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    sc = await prepare(worker_env)
    burst, revoked, night = sc.user("burst"), sc.user("revoked"), sc.user("night")
    await sc.consent(burst, day_zone(), push=True)
    await sc.consent(revoked, day_zone(), push=True, in_app=False)
    await sc.consent(night, night_zone(), push=True, in_app=False)
    worker = WorkerProcess(worker_env, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        consent_keys = [user_keys(u).consent for u in (burst, revoked, night)]

        async def consents_applied() -> bool:  # all three: they may be on other partitions
            return int(await redis_client.exists(*consent_keys)) == len(consent_keys)

        await sc.wait_for(consents_applied, label="consents applied")

        # a burst of 100 triggering events (channels asking for a push now), in many batches
        for _ in range(10):
            await sc.events(burst, *[("decision_request", None)] * 10)
            await asyncio.sleep(0.2)
        # consent revoked: push stops from the next batch on
        await sc.events(revoked, ("like", "i0"))
        first = await sc.wait_for(lambda: sc.messages(revoked, 1.0), label="revoked's message")
        assert [m["channel"] for m in first] == ["push"], worker.tail()
        await sc.consent(revoked, day_zone(), push=False, in_app=False)

        async def push_revoked() -> bool:
            raw = await redis_client.get(user_keys(revoked).consent)
            return raw is not None and json.loads(raw)["channels"]["push"] is False

        await sc.wait_for(push_revoked, label="revocation applied")
        await sc.events(revoked, ("like", "i1"), ("like", "i2"))
        # quiet hours: the night user's push waits; nothing else is consented
        await sc.events(night, ("like", "i2"))

        await sc.wait_for(lambda: sc.decisions(night, 1.0), label="night's decision")
        # the barrier: a marker after every event, on every partition, must be applied
        markers = await produce_markers(
            worker_env.kafka_bootstrap, sc.settings.topic_user_events, worker_env.partitions,
            worker_env.token,
        )  # fmt: skip
        assert await markers_applied(redis_client, markers), worker.tail()
        burst_messages = await sc.messages(burst)
        assert [m["channel"] for m in burst_messages] == ["push"], worker.tail()  # 1 an hour
        burst_log = await sc.decisions(burst)
        assert len(burst_log) >= 2 and burst_log[0]["sent"] is True
        assert all(d["reason"] == "cap" for d in burst_log[1:])

        assert len(await sc.messages(revoked)) == 1
        assert (await sc.decisions(revoked))[-1]["reason"] == "consent"

        assert await sc.messages(night) == []
        (night_decision,) = await sc.decisions(night)
        assert night_decision["sent"] is False and night_decision["reason"] == "quiet_hours"
        assert night_decision["tz"] == night_zone() and night_decision["policy_version"]
        api = ApiProcess(worker_env, tmp_path / "api.log").start()
        try:
            api.wait_ready()
            status, body = api.get_json(f"/users/{night}/decisions")
        finally:
            api.stop()
        assert status == 200
        assert body["decisions"][0]["reason"] == "quiet_hours"  # type: ignore[index]
        assert body["decisions"][0]["rejected"] == {"quiet_hours": 3}  # type: ignore[index]
    finally:
        worker.stop()


async def test_cart_timers_fire_once_not_after_a_purchase_and_across_a_restart(
    worker_env: WorkerEnv, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    sc = await prepare(worker_env)
    shopper, buyer, restarted = sc.user("shopper"), sc.user("buyer"), sc.user("restart")
    worker = WorkerProcess(worker_env, tmp_path / "worker-1.log").start()
    try:
        worker.wait_ready()
        await sc.events(shopper, ("add_to_cart", "i1"))
        await sc.events(buyer, ("add_to_cart", "i2"), ("purchase", "i2"))
        await sc.events(restarted, ("add_to_cart", "i0"))
        await sc.wait_for(lambda: sc.messages(restarted, 1.0), label="restart's first message")
    finally:
        worker.stop()  # before the timers are due

    worker = WorkerProcess(worker_env, tmp_path / "worker-2.log").start()
    try:
        worker.wait_ready()

        def carts(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [m for m in messages if m["trigger"]["type"] == "cart_abandonment"]

        async def fired(user: str) -> list[dict[str, Any]]:
            return carts(await sc.messages(user, 1.0))

        shopper_cart = await sc.wait_for(lambda: fired(shopper), label="shopper's cart offer")
        await sc.wait_for(lambda: fired(restarted), label="restarted user's cart offer")
        # the barrier: a cart started now fires a whole delay later, so the timer poller has
        # run well past any second firing of the others by the time this one is seen
        late = sc.user("late")
        await sc.events(late, ("add_to_cart", "i0"))
        await sc.wait_for(lambda: fired(late), label="the late user's cart offer")

        assert len(carts(await sc.messages(shopper))) == 1, worker.tail()
        assert len(carts(await sc.messages(restarted))) == 1
        assert carts(await sc.messages(buyer)) == []
        assert [o["offer_id"] for o in shopper_cart[0]["offers"]] == ["o1"]
        log = await sc.decisions(shopper)
        assert sum(d["trigger"]["type"] == "cart_abandonment" for d in log) == 1
    finally:
        worker.stop()


async def test_a_calibrated_worker_sends_a_match_and_holds_weak_offers_back(
    worker_env: WorkerEnv, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    """With a calibration for its own settings, a real worker puts ``match`` on each offer it
    sends and holds back, as ``below_match``, the offers under push's ``min_match`` (10 %):
    the offer of the liked genre maps to 50 %, the others to 3 %."""
    calibration = calibration_for(
        pipeline_config(worker_env.settings()), [(0.0, 0.03), (0.5, 0.03), (0.8, 0.5), (3.0, 0.5)]
    )
    path = tmp_path / "calibration.json"
    path.write_text(calibration.to_json(), encoding="utf-8")
    worker_env.extra["NBO_CALIBRATION_PATH"] = str(path)
    sc = await prepare(worker_env)
    fan = sc.user("fan")
    await sc.consent(fan, day_zone(), push=True)
    worker = WorkerProcess(worker_env, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()

        async def consent_applied() -> bool:
            return bool(await redis_client.exists(user_keys(fan).consent))

        await sc.wait_for(consent_applied, label="consent applied")
        # one batch: the like and the channel's request (push), decided once for the request
        await sc.events(fan, ("like", "i0"), ("decision_request", None))
        (message,) = await sc.wait_for(lambda: sc.messages(fan, 1.0), label="fan's message")
        (decision,) = await sc.decisions(fan)
    finally:
        worker.stop()
    assert message["channel"] == "push", worker.tail()
    assert [(o["offer_id"], o["match"]) for o in message["offers"]] == [("o0", 50.0)]
    assert decision["sent"] is True and decision["rejected"] == {"below_match": 2}
    assert sorted(h["offer_id"] for h in decision["held_back"]) == ["o1", "o2"]
    assert all(h["match"] == 3.0 for h in decision["held_back"])
    assert decision["offers"][0]["match"] == 50.0
