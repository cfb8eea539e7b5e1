"""The Overview and Offers pages in a real headless Chromium: the figures shown are those of
the twin sources, the charts load as images under the page's policy, and sorting is a link."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from agents.api_access import ApiAccess
from agents.console.app import Console
from agents.console.monitor import Monitor
from app.console.feeds import MemoryKafkaSource, MemoryOfferSource, OfferData, Sampled
from app.console.history import History, Scrape, key
from app.console.lift import ChannelCounts, GroupCounts
from app.console.overview import (
    DECISIONS,
    RECEIVED,
    SENT_BY_GROUP,
    SENT_BY_OFFER,
    SUPPRESSED,
    DeadLetter,
    DeadLetters,
    KafkaView,
    PartitionLag,
    WorkerStatus,
)
from app.console.sources import LiftCounts, MemoryLiftSource, MemoryPolicySource, PolicyView
from app.core.access import Scope
from app.core.exploration import ExplorationConfig, OfferStats
from app.policy.config import default_policy
from tests.support.api_clients import write_clients
from tests.support.browser import log_in, save_screenshot, served_console, submit_and_wait

pytestmark = pytest.mark.browser

TOKEN = "nbo_browser-operator-token"
NOW_S = 1_800_000_000.0
WORKER = "http://10.0.0.7:6066/metrics"


def sampled() -> Sampled:
    """Twenty minutes of one worker: 4 events/s, 0.5 push and 0.25 email messages a second,
    0.1 suppressed decisions a second (all for the cap); o1's posterior mean rising, o2's
    falling."""
    state = Sampled(History(400), posteriors=History(400, gauges=True))
    for i in range(121):
        values = {
            key(RECEIVED): 40.0 * i,
            key(SENT_BY_GROUP, group="personalised", channel="push"): 5.0 * i,
            key(SENT_BY_GROUP, group="control", channel="email"): 2.5 * i,
            key(DECISIONS, outcome="sent"): 7.5 * i,
            key(DECISIONS, outcome="suppressed"): 1.0 * i,
            key(SUPPRESSED, reason="cap"): 1.0 * i,
            key(SENT_BY_OFFER, offer="o1"): 5.0 * i,
            key(SENT_BY_OFFER, offer="o2"): 2.5 * i,
        }
        t = NOW_S - 1200 + 10 * i
        state.record_posteriors(t, {"o1": 0.12 + 0.03 * i / 120, "o2": 0.1 - 0.07 * i / 120})
        state.record(t, [Scrape(WORKER, values)], [WorkerStatus(WORKER, True, t - 600, t - 1)])
    return state


@pytest.fixture
def console(tmp_path: Path) -> Console:
    tokens = write_clients(tmp_path / "tokens", {"ops": (TOKEN, {Scope.CONSOLE})})
    access = ApiAccess(tokens, 100.0, 100, CollectorRegistry())
    lift = MemoryLiftSource(
        LiftCounts(
            (
                ChannelCounts("push", GroupCounts(6000, 600), GroupCounts(1000, 70)),
                ChannelCounts("all", GroupCounts(6000, 600), GroupCounts(1000, 70)),
            ),
            2.0,
        )
    )
    policy = MemoryPolicySource(PolicyView(default_policy(), "browser test policy", {}))
    kafka = KafkaView(
        (PartitionLag(0, 500, 480, 20), PartitionLag(1, 300, 295, 5)),
        DeadLetters(3, (DeadLetter(0, 2, "InvalidJson", "line 1", "user-events/1@7", "t"),)),
    )
    t_ms = int(NOW_S * 1000)
    offers = OfferData(
        {"o1": OfferStats(400.0, 60.0, 40.0, t_ms), "o2": OfferStats(50.0, 1.0, 0.0, t_ms)},
        {"o1": "Sci-fi weekend", "o2": "Drama night"},
        12,
    )
    monitor = Monitor(
        sampled(),
        MemoryKafkaSource(kafka),
        MemoryOfferSource(offers),
        ExplorationConfig(),
        clock=lambda: NOW_S,
    )
    return Console(access, b"b" * 32, 3600, False, policy, lift, monitor=monitor)


def cells(driver: WebDriver, table: str, first: str) -> list[str]:
    """The cells of the row of ``table`` (a class) whose first cell is ``first``."""
    for row in driver.find_elements(By.CSS_SELECTOR, f"table.{table} tr"):
        found = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
        if found and found[0] == first:
            return found
    raise AssertionError(f"no row {first!r} in table.{table}")


def images_loaded(driver: WebDriver) -> list[bool]:
    images = driver.find_elements(By.TAG_NAME, "img")
    return [bool(driver.execute_script("return arguments[0].naturalWidth > 0", i)) for i in images]


def test_the_overview_shows_the_sampled_figures_and_its_charts(
    driver: WebDriver, console: Console
) -> None:
    driver.delete_all_cookies()
    with served_console(console) as base:
        log_in(driver, base, TOKEN)
        assert driver.current_url == f"{base}/overview"  # the home page
        assert cells(driver, "events", "received")[1:] == ["4.00", "4.00"]
        assert cells(driver, "channels", "push")[1:] == ["150", "600"]
        assert cells(driver, "channels", "email")[1:] == ["75", "300"]
        assert cells(driver, "decisions", "suppressed: cap")[1:] == ["30", "120"]
        assert cells(driver, "lag", "1") == ["1", "300", "295", "5"]
        assert driver.find_element(By.CLASS_NAME, "total-lag").text == "25"
        assert "InvalidJson" in cells(driver, "dead-latest", "t")
        assert cells(driver, "workers", WORKER)[1] == "answering"
        heads = [h.text for h in driver.find_elements(By.CSS_SELECTOR, "table.events th")]
        assert "last hour (since the console started: 20 min)" in heads
        assert images_loaded(driver) == [True, True]
        save_screenshot(driver, "console-overview")


def test_the_offers_page_sorts_and_each_offer_has_its_chart(
    driver: WebDriver, console: Console
) -> None:
    driver.delete_all_cookies()
    with served_console(console) as base:
        log_in(driver, base, TOKEN)
        driver.get(f"{base}/offers")
        o1 = cells(driver, "offers", "o1")
        # 400 impressions, 60 clicks, 40 acceptances; Beta(1 + 60, 9 + 340): mean 14.88 %
        assert o1[1:5] == ["Sci-fi weekend", "600", "600", "400.0"]  # sent in 20 min
        assert o1[7:11] == ["15.00 %", "10.00 %", "2.44 %", "14.88 %"]
        first = driver.find_elements(By.CSS_SELECTOR, "table.offers td:first-child")
        assert [c.text for c in first] == ["o1", "o2"]  # most sent first
        submit_and_wait(
            driver, driver.find_element(By.LINK_TEXT, "sent ▼").click
        )  # the same column, ascending
        first = driver.find_elements(By.CSS_SELECTOR, "table.offers td:first-child")
        assert [c.text for c in first] == ["o2", "o1"]
        save_screenshot(driver, "console-offers")
        submit_and_wait(driver, driver.find_element(By.LINK_TEXT, "o1").click)
        assert driver.current_url == f"{base}/offers/o1"
        assert "Sci-fi weekend" in driver.find_element(By.TAG_NAME, "h1").text
        assert images_loaded(driver) == [True, True]  # sends and posterior over time
        save_screenshot(driver, "console-offer")
        driver.get(f"{base}/lift")
        assert images_loaded(driver) == [True]
        save_screenshot(driver, "console-lift-per-channel")
