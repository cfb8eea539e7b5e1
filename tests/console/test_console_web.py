"""``nbo console``'s web layer on the in-memory twins: login, sessions, pages."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from agents.api_access import ApiAccess
from agents.console.app import Console
from app.console.lift import ChannelCounts, GroupCounts
from app.console.session import COOKIE_NAME, CSRF_FIELD
from app.console.sources import LiftCounts, MemoryLiftSource, MemoryPolicySource, PolicyView
from app.core.access import Scope
from app.policy.config import PolicyError, default_policy
from tests.support.api_clients import write_clients
from tests.support.console_login import form_csrf, log_in

pytestmark = pytest.mark.unit

CONSOLE_TOKEN = "nbo_console-operator-token"
OFFERS_TOKEN = "nbo_push-service-token"
KEY = b"k" * 32
SECRET_FIGURE = "5600"
"""Acceptances of the personalised group in the twin: a page that leaks data shows it."""


@dataclass
class Setup:
    client: TestClient
    tokens: Path
    console: Console
    now: list[float]


def write_tokens(path: Path, console_scopes: frozenset[Scope]) -> None:
    write_clients(
        path, {"ops": (CONSOLE_TOKEN, console_scopes), "push": (OFFERS_TOKEN, {Scope.OFFERS})}
    )


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    tokens = tmp_path / "tokens"
    write_tokens(tokens, frozenset({Scope.CONSOLE}))
    now = [1_000_000.0]
    access = ApiAccess(tokens, 100.0, 100, CollectorRegistry(), clock=lambda: now[0])
    lift = MemoryLiftSource(
        LiftCounts(
            (ChannelCounts("all", GroupCounts(7000, int(SECRET_FIGURE)), GroupCounts(8000, 4800)),),
            10.0,
        )
    )
    weights = {"w_affinity": 0.7, "w_value": 0.2}
    policy = MemoryPolicySource(PolicyView(default_policy(), "test policy", weights))
    console = Console(access, KEY, 3600, False, policy, lift, clock=lambda: now[0])
    client = TestClient(TestServer(console.application()))
    await client.start_server()
    try:
        yield Setup(client, tokens, console, now)
    finally:
        await client.close()


async def login(client: TestClient, token: str) -> tuple[int, str, str | None]:
    """(status, body, the session cookie's Set-Cookie header or None)."""
    response = await log_in(client, token, allow_redirects=False)
    session = [
        header
        for header in response.headers.getall("Set-Cookie", [])
        if header.startswith(f"{COOKIE_NAME}=")
    ]
    return response.status, await response.text(), session[0] if session else None


async def test_login_with_a_console_token_opens_a_session_and_shows_the_pages(
    setup: Setup,
) -> None:
    status, _, cookie = await login(setup.client, CONSOLE_TOKEN)
    assert status == 303 and cookie is not None
    lift = await setup.client.get("/lift")
    assert lift.status == 200
    text = await lift.text()
    assert SECRET_FIGURE in text and "ops" in text
    assert "+20.00" in text and "80.00 %" in text and "60.00 %" in text
    policy = await setup.client.get("/policy")
    body = await policy.text()
    assert policy.status == 200
    assert "default-2025.2" in body and "NBO_W_AFFINITY" in body and "1 per 1h, 3 per 1d" in body


async def test_the_session_cookie_is_httponly_samesite_strict_and_expires(setup: Setup) -> None:
    _, _, cookie = await login(setup.client, CONSOLE_TOKEN)
    assert cookie is not None
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in attributes
    assert "samesite=strict" in attributes
    assert "max-age=3600" in attributes
    assert CONSOLE_TOKEN not in cookie


async def test_a_token_without_the_console_scope_gets_the_403_page(setup: Setup) -> None:
    status, text, cookie = await login(setup.client, OFFERS_TOKEN)
    assert status == 403 and cookie is None
    assert "lacks the <code>console</code> scope" in text
    assert SECRET_FIGURE not in text


@pytest.mark.parametrize("token", ["nbo_not-a-known-token", ""])
async def test_a_wrong_or_missing_token_gets_401_and_the_login_form(
    setup: Setup, token: str
) -> None:
    status, text, cookie = await login(setup.client, token)
    assert status == 401 and cookie is None
    assert 'name="token"' in text


@pytest.mark.parametrize("page", ["/", "/lift", "/policy", "/no-such-page"])
async def test_a_page_without_a_session_redirects_to_login_and_shows_no_data(
    setup: Setup, page: str
) -> None:
    response = await setup.client.get(page, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/login"
    text = await response.text()
    assert SECRET_FIGURE not in text and "default-2025.2" not in text


async def test_a_forged_cookie_is_no_session(setup: Setup) -> None:
    forged = {COOKIE_NAME: "ops.9999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}
    response = await setup.client.get("/lift", cookies=forged, allow_redirects=False)
    assert response.status == 303


async def test_logout_ends_the_session_even_for_a_kept_copy_of_the_cookie(setup: Setup) -> None:
    await login(setup.client, CONSOLE_TOKEN)
    kept = {c.key: c.value for c in setup.client.session.cookie_jar}
    out = await setup.client.post("/logout", allow_redirects=False)
    assert out.status == 303 and out.headers["Location"] == "/login"
    after = await setup.client.get("/lift", allow_redirects=False)
    assert after.status == 303
    setup.client.session.cookie_jar.clear()
    replayed = await setup.client.get("/lift", cookies=kept, allow_redirects=False)
    assert replayed.status == 303


async def test_revoking_the_console_scope_ends_the_session(setup: Setup) -> None:
    await login(setup.client, CONSOLE_TOKEN)
    assert (await setup.client.get("/policy", allow_redirects=False)).status == 200
    write_tokens(setup.tokens, frozenset({Scope.OFFERS}))
    os.utime(setup.tokens, ns=(1, 1))  # a new stamp, even within the same file-time tick
    setup.now[0] += 2  # the tokens file is looked at again after a second
    response = await setup.client.get("/policy", allow_redirects=False)
    assert response.status == 303


async def test_login_and_health_are_open_and_pages_are_logged_without_the_token(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    assert (await setup.client.get("/healthz")).status == 200
    assert (await setup.client.get("/login")).status == 200
    assert (await setup.client.get("/static/console.css")).status == 200
    with caplog.at_level(logging.INFO, logger="nbo.access"):
        await login(setup.client, CONSOLE_TOKEN)
        await setup.client.get("/lift")
    lines = [r.getMessage() for r in caplog.records if r.name == "nbo.access"]
    assert lines == [
        "client=- endpoint=console:/login status=200",  # the form
        "client=ops endpoint=console:/login status=303",
        "client=ops endpoint=console:/lift status=200",
    ]
    assert not [line for line in lines if CONSOLE_TOKEN in line]


async def test_the_lift_page_without_counts_says_so(setup: Setup) -> None:
    setup.console.lift = MemoryLiftSource(LiftCounts((), 0.0, failed=("http://w1:6066/metrics",)))
    await login(setup.client, CONSOLE_TOKEN)
    text = await (await setup.client.get("/lift")).text()
    assert "No counts yet" in text and "http://w1:6066/metrics" in text


async def test_pages_carry_a_self_only_content_security_policy(setup: Setup) -> None:
    await login(setup.client, CONSOLE_TOKEN)
    for page in ("/login", "/lift", "/policy"):
        response = await setup.client.get(page)
        assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")
        assert "http" not in (await response.text()).split("</head>")[0]  # no external asset


class BrokenPolicy:
    def policy_view(self) -> PolicyView:
        raise PolicyError("policy.toml: invalid TOML: expected '=' (line 3)")


async def test_an_unreadable_policy_file_is_named_on_the_page(setup: Setup) -> None:
    setup.console.policy = BrokenPolicy()
    await login(setup.client, CONSOLE_TOKEN)
    response = await setup.client.get("/policy")
    assert response.status == 500
    assert "policy.toml: invalid TOML" in await response.text()


async def test_a_login_without_the_forms_nonce_and_token_is_refused(setup: Setup) -> None:
    # a form posted from another site: no nonce cookie (SameSite=Strict), no CSRF token
    response = await setup.client.post(
        "/login", data={"token": CONSOLE_TOKEN}, allow_redirects=False
    )
    assert response.status == 403
    assert "expired or came from elsewhere" in await response.text()
    assert COOKIE_NAME not in response.cookies
    # a token copied from another browser's form does not fit this browser's nonce
    other = TestClient(TestServer(setup.console.application()))
    await other.start_server()
    try:
        stolen = form_csrf(await (await other.get("/login")).text())
    finally:
        await other.close()
    await setup.client.get("/login")  # this browser's own nonce
    response = await setup.client.post(
        "/login", data={"token": CONSOLE_TOKEN, CSRF_FIELD: stolen}, allow_redirects=False
    )
    assert response.status == 403 and COOKIE_NAME not in response.cookies


@pytest.mark.parametrize(
    ("header", "value"),
    [("Origin", "https://evil.example"), ("Origin", "null"), ("Referer", "https://evil.example/x")],
)
async def test_a_form_posted_from_another_origin_is_refused(
    setup: Setup, header: str, value: str
) -> None:
    form = await setup.client.get("/login")
    csrf = form_csrf(await form.text())
    response = await setup.client.post(
        "/login",
        data={"token": CONSOLE_TOKEN, CSRF_FIELD: csrf},
        headers={header: value},
        allow_redirects=False,
    )
    assert response.status == 403 and COOKIE_NAME not in response.cookies
    assert "sent from another site" in await response.text()


async def test_a_form_posted_from_the_consoles_own_origin_logs_in(setup: Setup) -> None:
    form = await setup.client.get("/login")
    csrf = form_csrf(await form.text())
    origin = f"http://{setup.client.host}:{setup.client.port}"
    response = await setup.client.post(
        "/login",
        data={"token": CONSOLE_TOKEN, CSRF_FIELD: csrf},
        headers={"Origin": origin},
        allow_redirects=False,
    )
    assert response.status == 303 and COOKIE_NAME in response.cookies


async def test_loading_the_login_page_again_keeps_an_open_forms_token_good(setup: Setup) -> None:
    first = form_csrf(await (await setup.client.get("/login")).text())
    await setup.client.get("/favicon.ico")  # a browser's own request: 303 to /login
    await setup.client.get("/login")
    response = await setup.client.post(
        "/login", data={"token": CONSOLE_TOKEN, CSRF_FIELD: first}, allow_redirects=False
    )
    assert response.status == 303 and COOKIE_NAME in response.cookies
