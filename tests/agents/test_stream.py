"""A batch is retried while a dependency is down, and never for a failure that is for good."""

from __future__ import annotations

import pytest

from agents.stream import until_done
from app.ports import StoreUnavailable

pytestmark = pytest.mark.agents


async def test_a_transient_failure_is_retried_until_the_step_succeeds() -> None:
    attempts: list[int] = []
    retries: list[int] = []

    async def step() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise StoreUnavailable("Redis restarting")
        return "done"

    assert await until_done(step, "test step", lambda: retries.append(1)) == "done"
    assert (len(attempts), len(retries)) == (3, 2)


async def test_a_failure_for_good_is_raised_at_once_not_retried() -> None:
    attempts: list[int] = []
    retries: list[int] = []

    async def step() -> None:
        attempts.append(1)
        raise AttributeError("a defect")

    with pytest.raises(AttributeError):
        await until_done(step, "test step", lambda: retries.append(1))
    assert (len(attempts), len(retries)) == (1, 0)
