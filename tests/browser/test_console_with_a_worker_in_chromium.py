"""The whole console as an operator meets it: `nbo console` (the process) beside a real worker
on the real broker and Redis, every page opened in headless Chromium after a token login, and
the figures it shows read against what the topics and Redis hold. Screenshots of each page
are saved (``build/screenshots/e2e-*.png``)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiokafka.structs import ConsumerRecord
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

from app.commands.child_worker import ChildWorker
from app.policy.config import default_policy
from app.storage.offer_stats import OfferStatsConfig, RedisOfferStatsStore
from tests.integration.test_worker_end_to_end import catalogue_records, event
from tests.support.barrier import markers_applied, produce_markers
from tests.support.browser import log_in, save_screenshot, submit_and_wait
from tests.support.kafka_io import as_json, create_topics_with_catalogue, produce, read_topic
from tests.support.worker import WorkerEnv, WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.timeout(300)]

WAIT_S = 60.0
NO_IN_APP = """version = "no-in-app"
[caps.channels]
in_app = [{ max = 0, window = "1d" }]
"""


def feedback(n: int, user: str, kind: str, offer: str) -> tuple[bytes, bytes]:
    body = {"event_id": f"fb{n}", "user_id": user, "type": kind, "offer_id": offer,
            "channel": "web", "ts": int(time.time() * 1000)}  # fmt: skip
    return user.encode(), as_json(body)


async def everything(kafka_bootstrap: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic`` (read for 5 s: all that was written before is there)."""
    return await read_topic(kafka_bootstrap, topic, expect=10**9, timeout_s=5.0)


def rows(driver: WebDriver, selector: str) -> list[list[str]]:
    """The data cells of each row of the tables matching ``selector``."""
    found = []
    for row in driver.find_elements(By.CSS_SELECTOR, f"{selector} tr"):
        cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
        if cells:
            found.append(cells)
    return found


def shown_until(driver: WebDriver, url: str, check: Callable[[WebDriver], bool]) -> None:
    """Reload ``url`` until ``check`` holds (the console samples the workers every second)."""

    def reloaded(d: WebDriver) -> bool:
        d.get(url)
        return check(d)

    WebDriverWait(driver, WAIT_S, poll_frequency=1.0).until(reloaded)


async def test_every_page_shows_what_the_topics_and_redis_hold(
    driver: WebDriver,
    kafka_bootstrap: str,
    redis_url: str,
    redis_client: aioredis.Redis,
    unique: Callable[[str], str],
    tmp_path: Path,
) -> None:
    env = WorkerEnv(kafka_bootstrap, redis_url, unique("console-e2e"), partitions=2)
    s = env.settings()
    await create_topics_with_catalogue(kafka_bootstrap, s, *catalogue_records())
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    metrics_url = f"http://127.0.0.1:{env.web_port}/metrics"
    console_env = {
        **env.env(),
        "NBO_CONSOLE_METRICS_URLS": json.dumps([metrics_url]),
        "NBO_CONSOLE_SAMPLE_S": "1",
    }
    console: ChildWorker | None = None
    try:
        worker.wait_ready()
        console = ChildWorker(
            console_env,
            env.console_port,
            tmp_path / "console.log",
            command=("console",),
            ready_path="/healthz",
        )
        console.wait_ready()
        await asyncio.sleep(1.5)  # a first sample: the history's baseline before the events
        users = [f"u{n}-{env.token}" for n in range(4)]
        records = [event(f"e{n}", u, f"i{n % 3}") for n, u in enumerate(users)]
        records.append((users[0].encode(), b"{not json"))
        await produce(kafka_bootstrap, s.topic_user_events, records)
        messages = [
            json.loads(r.value)
            for r in await read_topic(kafka_bootstrap, s.topic_offers, expect=len(users))
        ]
        lead = messages[0]["offers"][0]["offer_id"]
        await produce(
            kafka_bootstrap,
            s.topic_user_events,
            [
                feedback(1, users[1], "offer_impression", lead),
                feedback(2, users[1], "offer_accepted", lead),
            ],
        )
        markers = await produce_markers(kafka_bootstrap, s.topic_user_events, 2, env.token)
        assert await markers_applied(redis_client, markers), worker.tail()
        messages = [json.loads(r.value) for r in await everything(kafka_bootstrap, s.topic_offers)]
        by_channel = Counter(m["channel"] for m in messages)
        personalised = Counter(m["channel"] for m in messages if m["group"] == "personalised")
        stats_store = RedisOfferStatsStore(
            redis_client,
            OfferStatsConfig(
                half_life_ms=int(s.offer_stats_half_life_s * 1000), prefix=s.redis_prefix
            ),
        )
        stats = await stats_store.read_all(s.topic_user_events, [0, 1])
        dead = await read_topic(kafka_bootstrap, s.topic_dead_letters, expect=1)
        assert len(dead) == 1

        base = f"http://127.0.0.1:{env.console_port}"
        driver.delete_all_cookies()
        driver.get(f"{base}/offers")  # without a session: the login, nothing else
        assert driver.current_url == f"{base}/login" and "Total lag" not in driver.page_source
        await asyncio.to_thread(log_in, driver, base, env.api_token)

        # Overview: the dead letter on the topic, the lag of the worker's group (0 once it
        # committed), the messages per channel on the offers topic, the worker answering
        def overview_matches(d: WebDriver) -> bool:
            channels = {r[0]: r[2] for r in rows(d, "table.channels")}
            return (
                d.find_element(By.CLASS_NAME, "dead-total").text == "1"
                and d.find_element(By.CLASS_NAME, "total-lag").text == "0"
                and channels == {c: str(n) for c, n in by_channel.items()}
            )

        try:
            await asyncio.to_thread(shown_until, driver, f"{base}/overview", overview_matches)
        except Exception:
            save_screenshot(driver, "e2e-overview-failed")
            raise AssertionError(
                f"overview: {rows(driver, 'table.channels')} vs {dict(by_channel)}; "
                f"{driver.find_element(By.TAG_NAME, 'body').text[:1500]}"
            ) from None
        assert [r[1] for r in rows(driver, "table.workers")] == ["answering"]
        assert [r[1] for r in rows(driver, "table.dead-latest")] == ["InvalidJson"]
        assert [r[0] for r in rows(driver, "table.lag")] == ["0", "1"]
        save_screenshot(driver, "e2e-overview")

        # Offers: the lead offer's impressions and acceptances as Redis holds them
        driver.get(f"{base}/offers")
        offers = {r[0]: r for r in rows(driver, "table.offers")}
        assert float(offers[lead][4]) == pytest.approx(stats[lead].impressions, abs=0.05)
        assert float(offers[lead][6]) == pytest.approx(stats[lead].accepts, abs=0.05)
        save_screenshot(driver, "e2e-offers")

        # Person: the offers and trail of a user as the worker published them
        first = next(m for m in messages if m["user_id"] == users[2])
        driver.get(f"{base}/person?user={users[2]}")
        shown = rows(driver, "table#offers")
        assert [r[1] for r in shown] == [o["offer_id"] for o in first["offers"]]
        assert [r[5] for r in shown] == [o["reason"] for o in first["offers"]]
        assert any(first["channel"] in " ".join(r) for r in rows(driver, "table#decisions"))
        caps = [r for r in rows(driver, "table#caps") if r[0] == first["channel"]]
        assert caps and all(r[2] == "1" for r in caps)  # the one message, in every window
        save_screenshot(driver, "e2e-person")

        # Lift: the personalised messages per channel on the topic
        driver.get(f"{base}/lift")
        lift_rows = rows(driver, "table")
        for channel, sent in personalised.items():
            row = next(r for r in lift_rows if r[:2] == [channel, "personalised"])
            assert row[2] == str(sent)
        save_screenshot(driver, "e2e-lift")

        # Policy: the policy in force (the shipped default here)
        driver.get(f"{base}/policy")
        assert default_policy().version in driver.find_element(By.TAG_NAME, "body").text
        save_screenshot(driver, "e2e-policy")

        # Simulate: the last hour of the events topic under a candidate that sends nothing
        # in app, replayed without writing anything
        valid = [
            json.loads(r.value)
            for r in await everything(kafka_bootstrap, s.topic_user_events)
            if r.value and r.value.startswith(b'{"')
        ]
        driver.get(f"{base}/simulate")
        driver.find_element(By.NAME, "policy").send_keys(NO_IN_APP)
        button = driver.find_element(By.CSS_SELECTOR, "form.sim button[type=submit]")
        submit_and_wait(driver, button.click, WAIT_S)
        body = driver.find_element(By.TAG_NAME, "body").text
        users_replayed = len({e["user_id"] for e in valid})
        assert f"{len(valid)} events of {users_replayed} users" in body, body[:3000]
        figures = rows(driver, "table#figures")
        in_app = [r for r in figures if "in_app" in r[0]]
        assert in_app and all(r[2] in {"0", "0.0", "0.00"} for r in in_app), figures
        save_screenshot(driver, "e2e-simulate")
    finally:
        if console is not None:
            console.stop()
        worker.stop()
