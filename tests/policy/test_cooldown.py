from __future__ import annotations

import pytest

from app.policy.config import Cooldown
from app.policy.cooldown import cooldown_until, in_cooldown
from app.policy.state import OfferFeedback, UserPolicyState, record_feedback
from tests.policy.builders import DAY, HOUR, NOON, offer_event, policy

pytestmark = pytest.mark.unit

COOLDOWN = policy().cooldown  # 14 d after a dismissal; 7 d after 3 ignored impressions


def after(*events: tuple[str, int]) -> UserPolicyState:
    state = UserPolicyState()
    for kind, ts in events:
        state = record_feedback(state, offer_event(kind, "o1", ts))
    return state


def test_dismissed_offer_is_suppressed_for_exactly_n_days() -> None:
    state = after(("offer_dismissed", NOON))
    assert in_cooldown(state, "o1", NOON, COOLDOWN)
    assert in_cooldown(state, "o1", NOON + 14 * DAY - 1, COOLDOWN)
    assert not in_cooldown(state, "o1", NOON + 14 * DAY, COOLDOWN)


def test_dismissal_suppresses_only_that_offer() -> None:
    state = after(("offer_dismissed", NOON))
    assert not in_cooldown(state, "o2", NOON, COOLDOWN)


def test_m_impressions_without_a_click_suppress_for_n2_days_from_the_last() -> None:
    two = after(("offer_impression", NOON), ("offer_impression", NOON + HOUR))
    assert not in_cooldown(two, "o1", NOON + 2 * HOUR, COOLDOWN)
    three = record_feedback(two, offer_event("offer_impression", "o1", NOON + 2 * HOUR))
    last = NOON + 2 * HOUR
    assert in_cooldown(three, "o1", last + 7 * DAY - 1, COOLDOWN)
    assert not in_cooldown(three, "o1", last + 7 * DAY, COOLDOWN)


def test_after_the_ignored_cooldown_one_more_ignored_impression_suppresses_again() -> None:
    state = after(*[("offer_impression", NOON + i) for i in range(3)])
    retry = NOON + 8 * DAY
    assert not in_cooldown(state, "o1", retry, COOLDOWN)
    state = record_feedback(state, offer_event("offer_impression", "o1", retry))
    assert in_cooldown(state, "o1", retry + 1, COOLDOWN)


@pytest.mark.parametrize("engagement", ["offer_click", "offer_accepted"])
def test_a_click_or_acceptance_resets_the_ignored_impressions(engagement: str) -> None:
    state = after(
        ("offer_impression", NOON),
        ("offer_impression", NOON + 1),
        (engagement, NOON + 2),
        ("offer_impression", NOON + 3),
        ("offer_impression", NOON + 4),
    )
    assert state.offers["o1"].impressions == 2
    assert not in_cooldown(state, "o1", NOON + 5, COOLDOWN)


def test_the_longer_of_both_cooldowns_applies() -> None:
    fb = OfferFeedback(dismissed_at=NOON, impressions=3, last_impression=NOON + 10 * DAY)
    assert cooldown_until(fb, COOLDOWN) == NOON + 17 * DAY
    assert cooldown_until(None, COOLDOWN) is None


def test_zero_disables_each_cooldown_rule() -> None:
    fb = OfferFeedback(dismissed_at=NOON, impressions=9, last_impression=NOON)
    off = Cooldown.model_validate(
        {"after_dismissed": "0s", "impressions_without_click": 0, "after_ignored": "7d"}
    )
    assert cooldown_until(fb, off) is None
