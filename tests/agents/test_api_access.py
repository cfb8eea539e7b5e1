"""The worker's guard of the lookups: the tokens file reread on change, fail closed, rate
limits per client, every refusal logged and counted without the token."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from agents.api_access import RELOAD_CHECK_S, ApiAccess
from app.commands.tokens import create_client, revoke_client
from app.core.access import HELD_PER_CLIENT, Scope

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def access(path: Path | None, clock: Clock, rate: float = 2.0, burst: int = 2) -> ApiAccess:
    return ApiAccess(path, rate, burst, CollectorRegistry(), clock)


def count(guard: ApiAccess, client: str, endpoint: str, status: int) -> float:
    value = guard.registry.get_sample_value(
        "nbo_api_requests_total", {"client": client, "endpoint": endpoint, "status": str(status)}
    )
    return value or 0.0


def test_without_a_tokens_file_every_lookup_is_refused() -> None:
    guard = access(None, Clock())
    assert guard.check("Bearer anything", Scope.OFFERS, "offers").status == 401


def test_a_created_client_is_let_in_and_a_revoked_one_refused_without_a_restart(
    tmp_path: Path,
) -> None:
    path, clock = tmp_path / "tokens", Clock()
    guard = access(path, clock)
    token = create_client(path, "push", [Scope.OFFERS])
    clock.now += RELOAD_CHECK_S
    assert guard.check(f"Bearer {token}", Scope.OFFERS, "offers").status == 200

    revoke_client(path, "push")
    clock.now += RELOAD_CHECK_S
    assert guard.check(f"Bearer {token}", Scope.OFFERS, "offers").status == 401


def test_a_tokens_file_that_does_not_parse_refuses_everyone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path, clock = tmp_path / "tokens", Clock()
    token = create_client(path, "push", [Scope.OFFERS])
    guard = access(path, clock)
    assert guard.check(f"Bearer {token}", Scope.OFFERS, "offers").status == 200

    path.write_text(path.read_text() + "oops\n")
    os.utime(path, ns=(1, 1))  # a change the stamp sees whatever the clock's resolution
    clock.now += RELOAD_CHECK_S
    with caplog.at_level(logging.ERROR, logger="nbo.access"):
        assert guard.check(f"Bearer {token}", Scope.OFFERS, "offers").status == 401
    assert "every lookup is refused" in caplog.text


def test_over_its_rate_a_client_gets_429_with_retry_after_and_others_are_not_slowed(
    tmp_path: Path,
) -> None:
    path, clock = tmp_path / "tokens", Clock()
    push = create_client(path, "push", [Scope.OFFERS])
    other = create_client(path, "web", [Scope.OFFERS])
    guard = access(path, clock, rate=2.0, burst=2)

    statuses = [guard.check(f"Bearer {push}", Scope.OFFERS, "offers").status for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = guard.check(f"Bearer {push}", Scope.OFFERS, "offers")
    assert (limited.status, limited.retry_after) == (429, "1")
    assert guard.check(f"Bearer {other}", Scope.OFFERS, "offers").status == 200
    clock.now += 0.5
    assert guard.check(f"Bearer {push}", Scope.OFFERS, "offers").status == 200


def test_answers_are_logged_and_counted_by_client_and_never_show_the_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path, clock = tmp_path / "tokens", Clock()
    token = create_client(path, "push", [Scope.OFFERS])
    guard = access(path, clock)
    with caplog.at_level(logging.INFO, logger="nbo.access"):
        guard.check(f"Bearer {token}", Scope.DECISIONS, "decisions")
        guard.check("Bearer nbo_stolen", Scope.OFFERS, "offers")
        served = guard.check(f"Bearer {token}", Scope.OFFERS, "offers")
        guard.record(served, "offers", 404)

    assert count(guard, "push", "decisions", 403) == 1
    assert count(guard, "-", "offers", 401) == 1
    assert count(guard, "push", "offers", 404) == 1
    assert "client=push endpoint=decisions status=403" in caplog.text
    assert token not in caplog.text and "nbo_stolen" not in caplog.text


async def test_refusals_are_held_back_at_the_clients_rate_and_beyond_the_cap_answered_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, clock = tmp_path / "tokens", Clock()
    push = create_client(path, "push", [Scope.OFFERS])
    guard = ApiAccess(path, 2.0, 1, CollectorRegistry(), clock, hold_max_s=1.0)
    slept: list[float] = []
    release = asyncio.Event()

    async def sleep(seconds: float) -> None:  # the holds, recorded and kept open
        slept.append(seconds)
        await release.wait()

    monkeypatch.setattr(asyncio, "sleep", sleep)
    assert guard.check(f"Bearer {push}", Scope.OFFERS, "offers").status == 200
    refused = guard.check(f"Bearer {push}", Scope.OFFERS, "offers")
    assert (refused.status, refused.wait_s) == (429, pytest.approx(0.5))
    holds = [asyncio.create_task(guard.hold(refused)) for _ in range(HELD_PER_CLIENT)]
    await asyncio.wait_for(wait_until(lambda: guard.held("push") == HELD_PER_CLIENT), 5)
    # each held behind the ones before it: 0.5 s, 1.0 s, then the longest hold
    assert slept[:3] == [pytest.approx(0.5), pytest.approx(1.0), 1.0]
    assert await guard.hold(refused) is False  # at the cap: answered at once, closed
    unknown = guard.check("Bearer nbo_guessed", Scope.OFFERS, "offers")
    anonymous = asyncio.create_task(guard.hold(unknown))  # the anonymous have a cap of their own
    await asyncio.wait_for(wait_until(lambda: guard.held("-") == 1), 5)
    assert slept[-1] == 1.0

    release.set()
    assert all(await asyncio.gather(*holds, anonymous))
    assert guard.held("push") == guard.held("-") == 0
    held = guard.registry.get_sample_value("nbo_api_refusals_held_total", {"client": "push"})
    assert held == HELD_PER_CLIENT


async def test_with_holding_off_or_for_a_served_request_nothing_is_held(tmp_path: Path) -> None:
    path, clock = tmp_path / "tokens", Clock()
    push = create_client(path, "push", [Scope.OFFERS])
    guard = access(path, clock, rate=1.0, burst=1)
    assert await guard.hold(guard.check(f"Bearer {push}", Scope.OFFERS, "offers")) is True
    assert await guard.hold(guard.check(f"Bearer {push}", Scope.OFFERS, "offers")) is True
    held = guard.registry.get_sample_value("nbo_api_refusals_held_total", {"client": "push"})
    assert not held


_real_sleep = asyncio.sleep  # the tests above replace asyncio.sleep to record the holds


async def wait_until(condition: Callable[[], bool]) -> None:
    while not condition():
        await _real_sleep(0)
