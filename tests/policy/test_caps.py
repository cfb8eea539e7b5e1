from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.enums import Channel
from app.policy.caps import capped_channels, channel_capped, count_in_window
from app.policy.config import Caps
from app.policy.state import UserPolicyState
from tests.policy.builders import DAY, HOUR, NOON, WEEK, policy

pytestmark = pytest.mark.unit

CAPS = policy().caps  # push 1/h and 3/d; 5/week across email, push, sms


def sent(**channels: list[int]) -> UserPolicyState:
    return UserPolicyState(contacts={Channel(c): tuple(sorted(t)) for c, t in channels.items()})


def test_a_contact_counts_until_exactly_one_window_later() -> None:
    assert count_in_window([NOON], NOON + HOUR - 1, HOUR) == 1
    assert count_in_window([NOON], NOON + HOUR, HOUR) == 0


def test_future_contacts_count() -> None:
    assert count_in_window([NOON + 5], NOON, HOUR) == 1


def test_push_is_capped_for_exactly_one_hour_after_a_push() -> None:
    state = sent(push=[NOON])
    assert channel_capped(state, Channel.PUSH, NOON + HOUR - 1, CAPS)
    assert not channel_capped(state, Channel.PUSH, NOON + HOUR, CAPS)


def test_third_push_of_a_day_caps_push_until_the_first_leaves_the_window() -> None:
    state = sent(push=[NOON, NOON + 2 * HOUR, NOON + 4 * HOUR])
    assert channel_capped(state, Channel.PUSH, NOON + 6 * HOUR, CAPS)
    assert channel_capped(state, Channel.PUSH, NOON + DAY - 1, CAPS)
    assert not channel_capped(state, Channel.PUSH, NOON + DAY, CAPS)


def test_a_channel_cap_does_not_cap_other_channels() -> None:
    state = sent(push=[NOON])
    assert capped_channels(state, NOON + 1, CAPS) == {Channel.PUSH}


def test_global_cap_counts_all_global_channels_together_until_the_window_edge() -> None:
    # 5 messages in a week across email, push and sms, each within its own channel caps
    times = [NOON + i * DAY for i in range(5)]
    state = sent(email=times[:2], push=times[2:4], sms=times[4:])
    now = NOON + 6 * DAY
    assert capped_channels(state, now, CAPS) == {Channel.EMAIL, Channel.PUSH, Channel.SMS}
    # the first leaves the 7-day window exactly one week after it was sent
    assert channel_capped(state, Channel.PUSH, NOON + WEEK - 1, CAPS)
    assert not channel_capped(state, Channel.PUSH, NOON + WEEK, CAPS)


def test_channels_outside_the_global_set_neither_count_nor_are_capped_globally() -> None:
    busy = [NOON - i * 3 * HOUR for i in range(5)]
    state = sent(email=[NOON - 6 * DAY], push=[NOON - 5 * DAY], web=busy, in_app=busy[:2])
    assert not channel_capped(state, Channel.SMS, NOON, CAPS)
    state = sent(email=[NOON - 6 * DAY, NOON - 4 * DAY], push=busy[2:], sms=[NOON - 2 * DAY])
    assert channel_capped(state, Channel.SMS, NOON, CAPS)
    assert not channel_capped(state, Channel.WEB, NOON, CAPS)


def test_a_zero_cap_blocks_the_channel_and_no_caps_block_nothing() -> None:
    strict = policy(caps={"channels": {"sms": [{"max": 0, "window": "1d"}]}}).caps
    assert channel_capped(UserPolicyState(), Channel.SMS, NOON, strict)
    none = Caps()
    flood = sent(push=[NOON - i for i in range(16)])
    assert capped_channels(flood, NOON, none) == frozenset()


CONTACT_TIMES = st.lists(st.integers(min_value=NOON - 2 * WEEK, max_value=NOON + HOUR), max_size=6)


@given(st.dictionaries(st.sampled_from(list(Channel)), CONTACT_TIMES))
def test_capped_channels_are_exactly_the_channels_capped_one_by_one(
    contacts: dict[Channel, list[int]],
) -> None:
    state = UserPolicyState(contacts={c: tuple(sorted(t)) for c, t in contacts.items()})
    expected = {c for c in Channel if channel_capped(state, c, NOON, CAPS)}
    assert capped_channels(state, NOON, CAPS) == expected


@pytest.mark.parametrize(
    "caps",
    [
        {"channels": {"sms": [{"max": 0, "window": "1d"}]}},
        {"global": [{"max": 0, "window": "1d"}]},
        {"channels": {"web": [{"max": 2, "window": "1h"}]}},
    ],
    ids=["own-zero", "global-zero", "no-zero"],
)
@given(st.dictionaries(st.sampled_from(list(Channel)), CONTACT_TIMES, max_size=2))
def test_a_user_never_contacted_is_capped_exactly_where_a_zero_cap_closes_a_channel(
    caps: dict[str, object], contacts: dict[Channel, list[int]]
) -> None:
    table = policy(caps=caps).caps
    for state in (UserPolicyState(), sent(**{c.value: t for c, t in contacts.items()})):
        expected = {c for c in Channel if channel_capped(state, c, NOON, table)}
        assert capped_channels(state, NOON, table) == expected
