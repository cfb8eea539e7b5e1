"""The console's Person page on the in-memory twins: the extra scope, the audit log, and who
exists is not told."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from agents.api_access import ApiAccess
from agents.console.app import Console
from app.console.person import StorePersonSource, audit_subject
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
from tests.support.api_clients import write_clients
from tests.support.console_login import log_in as post_login

pytestmark = pytest.mark.unit

KEY = b"k" * 32
AUDIT_KEY = b"a" * 32
DECISIONS_TOKEN = "nbo_support-desk-token"
CONSOLE_ONLY_TOKEN = "nbo_dashboard-viewer-token"


@dataclass
class Setup:
    client: TestClient
    tokens: Path
    now: list[float]


def write_tokens(path: Path, desk_scopes: frozenset[Scope]) -> None:
    write_clients(
        path,
        {"desk": (DECISIONS_TOKEN, desk_scopes), "viewer": (CONSOLE_ONLY_TOKEN, {Scope.CONSOLE})},
    )


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    tokens = tmp_path / "tokens"
    write_tokens(tokens, frozenset({Scope.CONSOLE, Scope.DECISIONS}))
    now = [NOW_MS / 1000]
    access = ApiAccess(tokens, 100.0, 100, CollectorRegistry(), clock=lambda: now[0])
    policy = MemoryPolicySource(PolicyView(default_policy(), "test policy", {}))
    cat = catalogue()
    console = Console(
        access,
        KEY,
        3600,
        False,
        policy,
        MemoryLiftSource(),
        clock=lambda: now[0],
        person=StorePersonSource(await store_with_alice(cat), cat),
        audit_key=AUDIT_KEY,
    )
    client = TestClient(TestServer(console.application()))
    await client.start_server()
    try:
        yield Setup(client, tokens, now)
    finally:
        await client.close()


async def log_in(client: TestClient, token: str) -> None:
    response = await post_login(client, token, allow_redirects=False)
    assert response.status == 303


def access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "nbo.access"]


async def test_a_lookup_shows_consent_tags_offers_trail_and_caps_and_is_audit_logged(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    await log_in(setup.client, DECISIONS_TOKEN)
    with caplog.at_level(logging.INFO, logger="nbo.access"):
        response = await setup.client.get("/person", params={"user": USER})
    text = await response.text()
    assert response.status == 200
    assert OFFER_REASON in text and "sci-fi" in text and OFFER_TITLE in text
    assert "Europe/London" in text and "app-settings" in text
    assert "nothing sent</span>: cap" in text and "held back: o-weak (1.3 %)" in text
    caps = re.search(r'<table id="caps">(.*?)</table>', text, re.S)
    assert caps is not None
    # the shipped policy caps email at 1 a day and 3 a week, and the three interruptive
    # channels together at 5 a week: 2 emails today (reached), 3 this week (reached)
    for scope, window, sent, cap in (("email", "1d", 2, 1), ("email", "1w", 3, 3),
                                     ("all of email, push, sms", "1w", 3, 5)):  # fmt: skip
        cells = f'<td>{scope}</td><td>{window}</td><td class="num">{sent}</td>'
        cells += f'<td class="num">{cap}</td>'
        assert cells in caps.group(1)
    subject = audit_subject(AUDIT_KEY, USER)
    assert f"client=desk endpoint=console:/person status=200 person={subject}" in access_lines(
        caplog
    )
    assert not any(USER in line for line in access_lines(caplog))


async def test_without_the_decisions_scope_the_page_is_403_and_reads_nothing(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    await log_in(setup.client, CONSOLE_ONLY_TOKEN)
    with caplog.at_level(logging.INFO, logger="nbo.access"):
        response = await setup.client.get("/person", params={"user": USER})
    text = await response.text()
    assert response.status == 403
    assert "decisions:read" in text
    assert OFFER_REASON not in text and "sci-fi" not in text and "Europe/London" not in text
    assert "client=viewer endpoint=console:/person status=403 person=-" in access_lines(caplog)


async def test_losing_the_decisions_scope_closes_the_page_within_the_session(
    setup: Setup,
) -> None:
    await log_in(setup.client, DECISIONS_TOKEN)
    assert (await setup.client.get("/person", params={"user": USER})).status == 200
    write_tokens(setup.tokens, frozenset({Scope.CONSOLE}))
    setup.now[0] += 2  # the tokens file is checked at most once a second
    response = await setup.client.get("/person", params={"user": USER})
    assert response.status == 403 and OFFER_REASON not in await response.text()


async def test_an_unknown_user_and_a_known_user_without_data_look_the_same(
    setup: Setup,
) -> None:
    await log_in(setup.client, DECISIONS_TOKEN)
    unknown = await setup.client.get("/person", params={"user": "nobody"})
    known = await setup.client.get("/person", params={"user": "bob"})
    assert unknown.status == known.status == 200
    unknown_text = (await unknown.text()).replace("nobody", "USER")
    known_text = (await known.text()).replace("bob", "USER")
    assert unknown_text == known_text
    assert "No data for this user" in known_text


@pytest.mark.parametrize("user", ["a" * 129, "alice\n", "<script>", "x y"])
async def test_a_user_id_outside_the_schema_is_refused_without_a_lookup(
    setup: Setup, user: str, caplog: pytest.LogCaptureFixture
) -> None:
    await log_in(setup.client, DECISIONS_TOKEN)
    with caplog.at_level(logging.INFO, logger="nbo.access"):
        response = await setup.client.get("/person", params={"user": user})
    text = await response.text()
    assert response.status == 400 and "not a user id" in text
    assert "<script>" not in text
    assert "client=desk endpoint=console:/person status=400 person=-" in access_lines(caplog)


async def test_the_form_alone_reads_nothing_and_the_page_needs_a_session(setup: Setup) -> None:
    response = await setup.client.get("/person", params={"user": USER}, allow_redirects=False)
    assert response.status == 303 and OFFER_REASON not in await response.text()
    await log_in(setup.client, DECISIONS_TOKEN)
    form = await setup.client.get("/person")
    text = await form.text()
    assert form.status == 200 and 'name="user"' in text and OFFER_REASON not in text


async def test_lookups_beyond_the_client_s_rate_get_429_without_a_lookup(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    write_tokens(tokens, frozenset({Scope.CONSOLE, Scope.DECISIONS}))
    now = NOW_MS / 1000
    access = ApiAccess(tokens, 0.5, 2, CollectorRegistry(), clock=lambda: now)
    policy = MemoryPolicySource(PolicyView(default_policy(), "test policy", {}))
    cat = catalogue()
    person = StorePersonSource(await store_with_alice(cat), cat)
    console = Console(access, KEY, 3600, False, policy, MemoryLiftSource(), person=person)
    async with TestClient(TestServer(console.application())) as client:
        response = await post_login(client, DECISIONS_TOKEN)
        assert response.status == 200  # the login took one request of the burst of 2
        first = await client.get("/person", params={"user": USER})
        assert first.status == 200 and OFFER_REASON in await first.text()
        second = await client.get("/person", params={"user": USER})
        assert second.status == 429 and second.headers["Retry-After"] == "2"
        assert OFFER_REASON not in await second.text()


async def test_a_store_that_does_not_answer_is_a_503_page_not_a_crash(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    write_tokens(tokens, frozenset({Scope.CONSOLE, Scope.DECISIONS}))
    access = ApiAccess(tokens, 100.0, 100, CollectorRegistry())
    policy = MemoryPolicySource(PolicyView(default_policy(), "test policy", {}))
    cat = catalogue()
    store = await store_with_alice(cat)
    store.available = False
    person = StorePersonSource(store, cat)
    console = Console(access, KEY, 3600, False, policy, MemoryLiftSource(), person=person)
    async with TestClient(TestServer(console.application())) as client:
        await post_login(client, DECISIONS_TOKEN)
        response = await client.get("/person", params={"user": USER})
        assert response.status == 503 and "Redis does not answer" in await response.text()
