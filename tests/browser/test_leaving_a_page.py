"""When a page counts as left after a navigating submit (tests/support/browser.py), checked on
stand-ins for the answers chromedriver gives about an element of the page being replaced."""

from __future__ import annotations

import pytest
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

from tests.support.browser import LEFT_DOCUMENT, _left

pytestmark = pytest.mark.unit


class Element:
    """Answers ``is_enabled`` as an element of the old page would."""

    def __init__(self, error: Exception | None) -> None:
        self._error = error

    def is_enabled(self) -> bool:
        if self._error is not None:
            raise self._error
        return True


def test_an_element_still_in_the_page_means_the_page_is_not_left() -> None:
    assert not _left(Element(None))  # type: ignore[arg-type]


def test_a_stale_element_or_one_of_a_replaced_document_means_the_page_is_left() -> None:
    assert _left(Element(StaleElementReferenceException("stale")))  # type: ignore[arg-type]
    replaced = WebDriverException(
        f'unhandled inspector error: {{"message":"Node with given id {LEFT_DOCUMENT}"}}'
    )
    assert _left(Element(replaced))  # type: ignore[arg-type]


def test_any_other_driver_error_is_raised() -> None:
    with pytest.raises(WebDriverException, match="chrome not reachable"):
        _left(Element(WebDriverException("chrome not reachable")))  # type: ignore[arg-type]
