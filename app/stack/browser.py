"""The headless browser of the console's browser tests: Debian's ``chromium`` and
``chromium-driver`` (``/usr/bin/chromium``, ``/usr/bin/chromedriver``), installed with
apt-get when missing and we are root. Nothing is downloaded by a test tool at run time: the
tests drive exactly these two programs."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from app.stack.apt import find_or_install
from app.stack.errors import StackPrerequisiteMissing

PROGRAMS = ("chromium", "chromedriver")
PACKAGES = ("chromium", "chromium-driver")
INSTALL_HINT = (
    "install Chromium and its WebDriver (Debian/Ubuntu: `sudo apt-get install chromium "
    "chromium-driver`) so that `chromium` and `chromedriver` are on PATH"
)
HEADLESS_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--window-size=1280,1000",
)
"""Chromium's flags: headless, and no connection of its own to anywhere (its background
services would try Google's hosts at every start)."""


@dataclass(frozen=True)
class Browser:
    """Where the browser and its driver are."""

    chromium: str
    chromedriver: str


def find_browser() -> Browser:
    """The browser on PATH, or :class:`StackPrerequisiteMissing` saying what to install."""
    chromium, driver = (shutil.which(p) for p in PROGRAMS)
    if chromium is None or driver is None:
        missing = "chromium or chromedriver"
        raise StackPrerequisiteMissing(f"{missing} not found on PATH: {INSTALL_HINT}")
    return Browser(chromium, driver)


def install_browser() -> Browser:
    """The browser on PATH, installed first with apt-get when missing and we are root."""
    chromium, driver = find_or_install(PROGRAMS, PACKAGES, INSTALL_HINT)
    return Browser(chromium, driver)
