"""The browser tests' Chromium: one per test module (a fresh profile each)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.support.browser import chromium


@pytest.fixture(scope="module")
def driver() -> Iterator[WebDriver]:
    with chromium() as found:
        yield found
