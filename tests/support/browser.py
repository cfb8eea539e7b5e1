"""A real headless Chromium for the console's browser tests, and a console served to it.

* :func:`chromium`: a Selenium WebDriver on Debian's ``chromium`` + ``chromedriver`` (found on
  PATH, never downloaded; ``make test`` installs them first with ``nbo stack browser``), with a
  fresh profile directory and no network of its own.
* :func:`served_console`: serves a :class:`agents.console.app.Console` on a free loopback
  port from a background thread with its own event loop; yields the base URL.
* :func:`log_in`, :func:`save_screenshot`.

Screenshots land in ``build/screenshots/`` (``NBO_SCREENSHOT_DIR`` to change), to be looked at.
"""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from aiohttp import web

from app.stack.browser import HEADLESS_ARGS, find_browser
from app.stack.errors import StackPrerequisiteMissing
from tests.support.services import services_required

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement

    from agents.console.app import Console

ROOT = Path(__file__).resolve().parents[2]
PAGE_LOAD_TIMEOUT_S = 30.0


def screenshot_dir() -> Path:
    path = Path(os.environ.get("NBO_SCREENSHOT_DIR", ROOT / "build" / "screenshots"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def chromium() -> Iterator[WebDriver]:
    """A headless Chromium driven by its WebDriver; fails (or skips, outside a required run)
    when the browser is not installed."""
    try:
        browser = find_browser()
    except StackPrerequisiteMissing as exc:
        if services_required():
            pytest.fail(f"required browser unavailable: {exc}", pytrace=False)
        pytest.skip(f"browser unavailable (NBO_REQUIRE_SERVICES=1 fails instead): {exc}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="nbo-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = browser.chromium
        for arg in HEADLESS_ARGS:
            options.add_argument(arg)
        options.add_argument(f"--user-data-dir={profile}")
        service = Service(executable_path=browser.chromedriver)
        driver = webdriver.Chrome(options=options, service=service)
        driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT_S)
        try:
            yield driver
        finally:
            driver.quit()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def served_console(console: Console) -> Iterator[str]:
    """Serve ``console`` on 127.0.0.1 from a background thread; yields ``http://127.0.0.1:P``."""
    port = _free_port()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop: asyncio.Event | None = None
    failure: list[BaseException] = []

    async def serve() -> None:
        nonlocal stop
        stop = asyncio.Event()
        runner = web.AppRunner(console.application(), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", port).start()
            ready.set()
            await stop.wait()
        finally:
            await runner.cleanup()

    def run() -> None:
        try:
            loop.run_until_complete(serve())
        except BaseException as exc:  # reported to the test below
            failure.append(exc)
            ready.set()
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="console-under-test", daemon=True)
    thread.start()
    ready.wait(30.0)
    if failure:
        raise failure[0]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        if stop is not None:
            loop.call_soon_threadsafe(stop.set)
        thread.join(30.0)


def log_in(driver: WebDriver, base_url: str, token: str) -> None:
    """Open the login page, paste ``token``, submit; waits for the next page."""
    from selenium.webdriver.common.by import By

    driver.get(f"{base_url}/login")
    field = driver.find_element(By.NAME, "token")
    field.send_keys(token)
    submit_and_wait(driver, field.submit)


def submit_and_wait(
    driver: WebDriver, submit: Callable[[], None], timeout_s: float = PAGE_LOAD_TIMEOUT_S
) -> None:
    """Run ``submit`` (a form's submit, a button's click) and wait until the page it leaves is
    gone: the next ``driver.get`` must not overtake the form's own request (a logout whose
    cookie is still set when the next page is asked for)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    old = driver.find_element(By.TAG_NAME, "html")
    submit()
    WebDriverWait(driver, timeout_s).until(lambda _: _left(old))


LEFT_DOCUMENT = "does not belong to the document"
"""What chromedriver says, instead of "stale element", when asked about an element of a document
that is being replaced (seen once in a cold make test, in the middle of a form's navigation)."""


def _left(element: WebElement) -> bool:
    """Whether ``element``'s document is gone (stale, or no longer the page's document)."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as error:
        if LEFT_DOCUMENT in (error.msg or ""):
            return True
        raise
    return False


def save_screenshot(driver: WebDriver, name: str) -> Path:
    """The whole visible page as ``<screenshot dir>/<name>.png``."""
    path = screenshot_dir() / f"{name}.png"
    if not driver.save_screenshot(str(path)):
        raise AssertionError(f"no screenshot saved to {path}")
    return path
