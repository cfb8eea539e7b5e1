"""The console's Person and Simulate pages in a real headless Chromium: fill the forms, submit,
and read the figures of the twin data off the rendered pages."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

from agents.api_access import ApiAccess
from agents.console.app import Console
from agents.console.simulate import Simulator
from app.console.person import StorePersonSource
from app.console.simulate import MemorySimulationSource
from app.console.sources import MemoryLiftSource, MemoryPolicySource, PolicyView
from app.core.access import Scope
from app.policy.config import default_policy
from tests.console.person_data import (
    NOW_MS,
    OFFER_REASON,
    OFFER_TITLE,
    USER,
    catalogue,
    store_with_alice,
)
from tests.console.test_simulate import TIGHT
from tests.simulation.test_replay import (
    ITEMS,
    OFFERS,
    consent,
    policy_with_push_cap,
    push_requests,
)
from tests.support.api_clients import write_clients
from tests.support.browser import log_in, save_screenshot, served_console, submit_and_wait

pytestmark = pytest.mark.browser

DESK_TOKEN = "nbo_browser-support-desk-token"
VIEWER_TOKEN = "nbo_browser-viewer-token"
WAIT_S = 60.0


@pytest.fixture
def console(tmp_path: Path) -> Console:
    tokens = write_clients(
        tmp_path / "tokens",
        {
            "desk": (DESK_TOKEN, {Scope.CONSOLE, Scope.DECISIONS}),
            "viewer": (VIEWER_TOKEN, {Scope.CONSOLE}),
        },
    )
    access = ApiAccess(tokens, 100.0, 100, CollectorRegistry())
    policy = MemoryPolicySource(PolicyView(default_policy(), "browser test policy", {}))
    cat = catalogue()
    store = asyncio.run(store_with_alice(cat))
    simulation = MemorySimulationSource(
        push_requests(), ITEMS, OFFERS, policy_with_push_cap(3), consent("u1")
    )
    return Console(
        access,
        b"b" * 32,
        3600,
        False,
        policy,
        MemoryLiftSource(),
        clock=lambda: NOW_MS / 1000,
        person=StorePersonSource(store, cat),
        simulator=Simulator(simulation, max_hours=48, max_events=1000),
    )


def table_rows(driver: WebDriver, table_id: str) -> list[list[str]]:
    rows = driver.find_elements(By.CSS_SELECTOR, f"table#{table_id} tr")
    return [[c.text for c in r.find_elements(By.TAG_NAME, "td")] for r in rows[1:]]


def submit_form(driver: WebDriver, form_selector: str) -> None:
    button = driver.find_element(By.CSS_SELECTOR, f"{form_selector} button[type=submit]")
    submit_and_wait(driver, button.click, WAIT_S)


def test_the_person_page_shows_a_looked_up_user_s_figures(
    driver: WebDriver, console: Console
) -> None:
    driver.delete_all_cookies()
    with served_console(console) as base:
        log_in(driver, base, DESK_TOKEN)
        driver.get(f"{base}/person")
        driver.find_element(By.NAME, "user").send_keys(USER)
        submit_form(driver, "form[action='/person']")
        assert driver.current_url.startswith(f"{base}/person?user=")
        tags = table_rows(driver, "tags")
        assert tags[0][0] == "sci-fi"
        offers = table_rows(driver, "offers")
        assert offers == [["1", "o-space", OFFER_TITLE, "0.870", "12.4", OFFER_REASON]]
        caps = {(r[0], r[1]): (r[2], r[3], r[4]) for r in table_rows(driver, "caps")}
        assert caps[("email", "1d")] == ("2", "1", "reached")
        assert caps[("email", "1w")] == ("3", "3", "reached")
        assert caps[("push", "1h")] == ("0", "1", "open")
        trail = table_rows(driver, "decisions")
        assert "nothing sent: cap" in trail[0][2] and "sent on email" in trail[1][2]
        assert "Europe/London" in driver.find_element(By.ID, "consent").text
        save_screenshot(driver, "console-person")
        driver.execute_script("document.getElementById('offers').scrollIntoView()")
        save_screenshot(driver, "console-person-offers-trail-caps")


def test_the_person_page_without_decisions_read_says_which_scope_is_missing(
    driver: WebDriver, console: Console
) -> None:
    driver.delete_all_cookies()
    with served_console(console) as base:
        log_in(driver, base, VIEWER_TOKEN)
        driver.get(f"{base}/person?user={USER}")
        text = driver.find_element(By.TAG_NAME, "body").text
        assert "decisions:read" in text and OFFER_REASON not in driver.page_source
        save_screenshot(driver, "console-person-forbidden")


def test_the_simulate_page_runs_a_candidate_policy_and_shows_the_report_and_chart(
    driver: WebDriver, console: Console
) -> None:
    driver.delete_all_cookies()
    with served_console(console) as base:
        log_in(driver, base, DESK_TOKEN)
        driver.get(f"{base}/simulate")
        weight = driver.find_element(By.NAME, "w_affinity").get_attribute("value")
        assert weight == repr(policy_with_push_cap(3).scoring.w_affinity)
        driver.find_element(By.NAME, "policy").send_keys(TIGHT)
        submit_form(driver, "form.sim")
        figures = {r[0]: r[1:] for r in table_rows(driver, "figures")}
        assert figures["messages"] == ["2", "0", "-2"]
        assert figures["suppressed: cap"] == ["2", "4", "+2"]
        header = driver.find_elements(By.CSS_SELECTOR, "table#figures th")
        assert [h.text for h in header] == ["figure", "push-3", "push-1", "difference"]
        WebDriverWait(driver, WAIT_S).until(
            lambda d: d.execute_script(
                "const i = document.querySelector('img.chart');"
                "return i !== null && i.complete && i.naturalWidth > 0;"
            )
        )
        save_screenshot(driver, "console-simulate")
        driver.execute_script("document.getElementById('report').scrollIntoView()")
        save_screenshot(driver, "console-simulate-report")
