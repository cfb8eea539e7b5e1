from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.enums import Channel, EventType
from app.core.events import UserEvent
from app.policy.state import (
    ChannelEngagement,
    OfferFeedback,
    StateLimits,
    UserPolicyState,
    prune,
    record_contact,
    record_feedback,
)
from tests.policy.builders import DAY, HOUR, NOON, offer_event

pytestmark = pytest.mark.unit


def test_impressions_clicks_and_accepts_count_per_channel() -> None:
    state = UserPolicyState()
    for kind in ("offer_impression", "offer_impression", "offer_click", "offer_accepted"):
        state = record_feedback(state, offer_event(kind, channel="push"))
    assert state.engagement == {Channel.PUSH: ChannelEngagement(impressions=2, clicks=1, accepts=1)}


def test_feedback_without_a_channel_updates_only_the_offer() -> None:
    state = record_feedback(UserPolicyState(), offer_event("offer_impression", ts=NOON))
    assert state.engagement == {}
    assert state.offers == {"o1": OfferFeedback(impressions=1, last_impression=NOON)}


def test_dismissal_is_recorded_on_the_offer_but_not_as_engagement() -> None:
    state = record_feedback(UserPolicyState(), offer_event("offer_dismissed", channel="email"))
    assert state.offers["o1"].dismissed_at == NOON
    assert state.engagement == {}


def test_dismissal_and_last_impression_keep_the_latest_time() -> None:
    state = record_feedback(UserPolicyState(), offer_event("offer_dismissed", ts=NOON))
    state = record_feedback(state, offer_event("offer_dismissed", ts=NOON - DAY))
    state = record_feedback(state, offer_event("offer_impression", ts=NOON))
    state = record_feedback(state, offer_event("offer_impression", ts=NOON - HOUR))
    assert state.offers["o1"] == OfferFeedback(
        dismissed_at=NOON, impressions=2, last_impression=NOON
    )


def test_a_click_on_an_undismissed_offer_leaves_no_record() -> None:
    state = record_feedback(UserPolicyState(), offer_event("offer_impression"))
    state = record_feedback(state, offer_event("offer_click"))
    assert state.offers == {}


def test_non_offer_events_leave_the_state_unchanged() -> None:
    state = record_feedback(UserPolicyState(), offer_event("offer_impression", channel="sms"))
    view = UserEvent(event_id="v", user_id="u1", type="view", item_id="i", channel="sms", ts=1)
    request = UserEvent(event_id="r", user_id="u1", type="decision_request", channel="sms", ts=1)
    assert record_feedback(state, view) is state
    assert record_feedback(state, request) is state


def test_engagement_counts_are_halved_beyond_the_trial_limit() -> None:
    limits = StateLimits(max_engagement_trials=4)
    state = UserPolicyState()
    for i in range(5):
        state = record_feedback(
            state, offer_event("offer_impression", ts=i, channel="web"), limits=limits
        )
    state = record_feedback(state, offer_event("offer_click", ts=9, channel="web"), limits=limits)
    assert state.engagement[Channel.WEB] == ChannelEngagement(impressions=2, clicks=1)


def test_offer_feedback_keeps_the_most_recently_touched_offers() -> None:
    limits = StateLimits(max_offers=2)
    state = UserPolicyState()
    for i, oid in enumerate(["a", "b", "c"]):
        state = record_feedback(
            state, offer_event("offer_impression", oid, NOON + i), limits=limits
        )
    state = record_feedback(state, offer_event("offer_dismissed", "a", NOON + 9), limits=limits)
    assert set(state.offers) == {"a", "c"}


def test_contacts_are_pruned_to_the_horizon_and_per_channel_limit() -> None:
    limits = StateLimits(max_contacts_per_channel=3)
    state = UserPolicyState()
    for i in range(5):
        state = record_contact(state, Channel.PUSH, NOON + i, horizon_ms=DAY, limits=limits)
    assert state.contacts[Channel.PUSH] == (NOON + 2, NOON + 3, NOON + 4)
    state = record_contact(state, Channel.EMAIL, NOON + DAY + 2, horizon_ms=DAY, limits=limits)
    # a contact exactly one horizon old is dropped
    assert state.contacts == {Channel.PUSH: (NOON + 3, NOON + 4), Channel.EMAIL: (NOON + DAY + 2,)}
    assert prune(state, NOON + 3 * DAY, horizon_ms=DAY).contacts == {}


def test_state_json_round_trips_compactly() -> None:
    state = UserPolicyState()
    state = record_contact(state, Channel.PUSH, NOON)
    state = record_feedback(state, offer_event("offer_impression", "o1", NOON, "push"))
    state = record_feedback(state, offer_event("offer_dismissed", "o2", NOON, "push"))
    data = state.to_json()
    assert UserPolicyState.from_json(data) == state
    assert json.loads(data) == {
        "v": 1,
        "c": {"push": [NOON]},
        "o": {"o1": {"n": 1, "i": NOON}, "o2": {"d": NOON, "n": 0}},
        "e": {"push": {"i": 1, "c": 0, "a": 0}},
    }
    assert b" " not in data
    assert UserPolicyState.from_json(b"{}") == UserPolicyState()


@pytest.mark.parametrize(
    "bad", [b"", b"[]", b'{"c": {"push": ["x"]}}', b'{"o": {"o1": {"n": -1}}}', b"{"]
)
def test_corrupt_state_json_is_rejected(bad: bytes) -> None:
    with pytest.raises(ValueError):
        UserPolicyState.from_json(bad)


feedback_events = st.builds(
    lambda kind, oid, ts, ch: offer_event(kind, oid, ts, ch),
    st.sampled_from(sorted(t.value for t in EventType if t.value.startswith("offer_"))),
    st.text(alphabet="abcdefghij", min_size=1, max_size=3),
    st.integers(min_value=0, max_value=10 * DAY),
    st.none() | st.sampled_from(list(Channel)),
)
actions = st.lists(
    st.one_of(
        feedback_events,
        st.tuples(st.sampled_from(list(Channel)), st.integers(min_value=0, max_value=10 * DAY)),
    ),
    max_size=300,
)


@settings(max_examples=60, deadline=None)
@given(actions)
def test_state_size_stays_bounded_under_any_updates(steps: list[object]) -> None:
    limits = StateLimits(max_offers=5, max_contacts_per_channel=4, max_engagement_trials=8)
    state = UserPolicyState()
    for step in steps:
        if isinstance(step, UserEvent):
            state = record_feedback(state, step, limits=limits)
        else:
            assert isinstance(step, tuple)
            channel, now = step
            state = record_contact(state, channel, now, horizon_ms=DAY, limits=limits)
        assert len(state.offers) <= 5
        assert all(len(t) <= 4 for t in state.contacts.values())
        assert all(max(e.impressions, e.clicks, e.accepts) <= 8 for e in state.engagement.values())
        assert all(fb.impressions <= len(steps) for fb in state.offers.values())
    assert len(state.to_json()) < 2000
    assert UserPolicyState.from_json(state.to_json()) == state
