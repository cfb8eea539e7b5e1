"""Sticky hash-based holdout groups."""

from __future__ import annotations

import math

import pytest

from app.core.holdout import CONTROL, PERSONALISED, group_of, position

pytestmark = pytest.mark.unit

IDS = [f"user-{i}" for i in range(100_000)]


def control_share(share: float, salt: str = "nbo-holdout") -> float:
    return sum(group_of(u, share, salt) == CONTROL for u in IDS) / len(IDS)


def test_a_user_keeps_its_group_across_calls_and_releases() -> None:
    # pinned: a change of the hash would silently move users between groups in production
    groups = [group_of(f"user-{i}", 0.5) for i in range(16)]
    assert "".join(g[0] for g in groups) == "ccpppppppcpcpppc"  # c: control, p: personalised
    assert [group_of(f"user-{i}", 0.5) for i in range(16)] == groups
    assert position("user-1") == 0.4261158637212381


@pytest.mark.parametrize("share", [0.01, 0.1, 0.5])
def test_the_control_share_is_close_to_the_configured_one(share: float) -> None:
    # with independent uniform positions the control count is Binomial(n, share): 5 standard
    # deviations (e.g. +-0.0047 at share 0.1) are exceeded with probability < 1e-6
    tolerance = 5 * math.sqrt(share * (1 - share) / len(IDS))
    assert abs(control_share(share) - share) < tolerance


def test_share_zero_holds_out_nobody() -> None:
    assert all(group_of(u, 0.0) == PERSONALISED for u in IDS[:10_000])


def test_raising_the_share_only_moves_users_into_control() -> None:
    small = {u for u in IDS[:10_000] if group_of(u, 0.05) == CONTROL}
    large = {u for u in IDS[:10_000] if group_of(u, 0.1) == CONTROL}
    assert small < large


def test_another_salt_draws_an_independent_split() -> None:
    ids = IDS[:10_000]
    same = sum(group_of(u, 0.5) == group_of(u, 0.5, salt="other") for u in ids) / len(ids)
    # independent splits agree on half of the users (sd 0.005); the same split on all
    assert abs(same - 0.5) < 0.025


@pytest.mark.parametrize("share", [-0.01, 0.51, 1.0])
def test_a_share_outside_zero_to_one_half_is_refused(share: float) -> None:
    with pytest.raises(ValueError):
        group_of("u", share)


def test_positions_lie_in_the_unit_interval() -> None:
    assert all(0.0 <= position(u) < 1.0 for u in IDS[:10_000])
