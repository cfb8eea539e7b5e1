"""The console in a real headless Chromium (Debian's chromium + chromedriver): what an
unauthenticated browser sees, logging in, and the pages' figures as rendered."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from agents.api_access import ApiAccess
from agents.console.app import Console
from app.console.lift import ChannelCounts, GroupCounts
from app.console.session import COOKIE_NAME
from app.console.sources import LiftCounts, MemoryLiftSource, MemoryPolicySource, PolicyView
from app.core.access import Scope
from app.policy.config import default_policy
from tests.support.api_clients import write_clients
from tests.support.browser import log_in, save_screenshot, served_console, submit_and_wait

pytestmark = pytest.mark.browser

CONSOLE_TOKEN = "nbo_browser-operator-token"
SECRET_FIGURE = "5600"
"""Acceptances of the personalised group: a page that leaks data shows it."""


@pytest.fixture
def console(tmp_path: Path) -> Console:
    tokens = write_clients(tmp_path / "tokens", {"ops": (CONSOLE_TOKEN, {Scope.CONSOLE})})
    access = ApiAccess(tokens, 100.0, 100, CollectorRegistry())
    lift = MemoryLiftSource(
        LiftCounts(
            (ChannelCounts("all", GroupCounts(7000, int(SECRET_FIGURE)), GroupCounts(8000, 4800)),),
            10.0,
        )
    )
    policy = MemoryPolicySource(
        PolicyView(default_policy(), "browser test policy", {"w_affinity": 0.7})
    )
    return Console(access, b"b" * 32, 3600, False, policy, lift)


def body_text(driver: WebDriver) -> str:
    return str(driver.find_element(By.TAG_NAME, "body").text)


def test_an_unauthenticated_browser_sees_only_the_login(
    driver: WebDriver, console: Console
) -> None:
    driver.delete_all_cookies()
    with served_console(console) as base:
        for page in ("/", "/lift", "/policy"):
            driver.get(base + page)
            assert driver.current_url == f"{base}/login"
            assert driver.find_elements(By.NAME, "token"), page
            assert SECRET_FIGURE not in driver.page_source
        save_screenshot(driver, "console-login")


def test_a_wrong_token_stays_on_the_login_with_an_error(
    driver: WebDriver, console: Console
) -> None:
    driver.delete_all_cookies()
    with served_console(console) as base:
        log_in(driver, base, "nbo_not-a-token")
        assert driver.find_elements(By.NAME, "token")
        assert driver.get_cookie(COOKIE_NAME) is None
        assert SECRET_FIGURE not in driver.page_source


def test_after_logging_in_the_lift_and_policy_pages_show_their_figures(
    driver: WebDriver, console: Console
) -> None:
    driver.delete_all_cookies()
    with served_console(console) as base:
        log_in(driver, base, CONSOLE_TOKEN)
        cookie = driver.get_cookie(COOKIE_NAME)
        assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        driver.get(f"{base}/lift")
        lift = body_text(driver)
        assert SECRET_FIGURE in lift and "80.00 %" in lift and "60.00 %" in lift
        assert "+20.00" in lift
        save_screenshot(driver, "console-lift")
        driver.get(f"{base}/policy")
        policy = body_text(driver)
        assert "default-2025.2" in policy and "1 per 1h, 3 per 1d" in policy
        assert "browser test policy" in policy
        save_screenshot(driver, "console-policy")
        logout = driver.find_element(By.CSS_SELECTOR, "form[action='/logout'] button")
        submit_and_wait(driver, logout.click)
        driver.get(f"{base}/lift")
        assert driver.current_url == f"{base}/login"
