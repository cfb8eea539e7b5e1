"""Logging in to the console as a browser does: fetch the login form (its nonce cookie and
CSRF token), then post the token with them."""

from __future__ import annotations

import re

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from app.console.session import CSRF_FIELD

_CSRF = re.compile(rf'name="{CSRF_FIELD}" value="([^"]+)"')


def form_csrf(html: str) -> str:
    """The CSRF token of a page's form."""
    found = _CSRF.search(html)
    assert found is not None, "no CSRF field on the page"
    return found.group(1)


async def log_in(client: TestClient, token: str, allow_redirects: bool = True) -> ClientResponse:
    """GET /login, then POST ``token`` with the form's CSRF token (the client keeps cookies)."""
    form = await client.get("/login")
    csrf = form_csrf(await form.text())
    return await client.post(
        "/login", data={"token": token, CSRF_FIELD: csrf}, allow_redirects=allow_redirects
    )
