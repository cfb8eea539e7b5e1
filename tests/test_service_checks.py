"""The suite's own service checks: a stopped broker or Redis fails fast and says so."""

from __future__ import annotations

import time

import pytest

from tests.support.services import ServicesUnavailable, check_kafka, check_redis, services_required
from tests.support.worker import free_port

pytestmark = pytest.mark.unit


async def test_a_stopped_broker_fails_the_check_quickly_with_a_clear_message() -> None:
    port = free_port()  # nothing listens here
    started = time.monotonic()
    with pytest.raises(ServicesUnavailable, match=f"Kafka at 127.0.0.1:{port} did not answer"):
        await check_kafka(f"127.0.0.1:{port}", timeout_s=3)
    assert time.monotonic() - started < 10


async def test_a_stopped_redis_fails_the_check_quickly_with_a_clear_message() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(ServicesUnavailable, match="did not answer PING"):
        await check_redis(f"redis://127.0.0.1:{port}/0", timeout_s=2)
    assert time.monotonic() - started < 10


def test_ci_requires_services(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NBO_REQUIRE_SERVICES", raising=False)
    monkeypatch.setenv("CI", "true")
    assert services_required()
    monkeypatch.setenv("CI", "")
    assert not services_required()
    monkeypatch.setenv("NBO_REQUIRE_SERVICES", "1")
    assert services_required()
