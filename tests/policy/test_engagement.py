from __future__ import annotations

import pytest

from app.core.enums import Channel
from app.policy.config import ChannelChoice
from app.policy.engagement import pick_channel, posterior_mean
from app.policy.state import ChannelEngagement
from tests.policy.builders import consent

pytestmark = pytest.mark.unit

CHOICE = ChannelChoice()  # Beta(1, 1); ties: in_app, web, push, email, sms


def stats(i: int = 0, c: int = 0, a: int = 0) -> ChannelEngagement:
    return ChannelEngagement(impressions=i, clicks=c, accepts=a)


def test_posterior_mean_with_beta_prior() -> None:
    assert posterior_mean(None, 1, 1) == 0.5
    assert posterior_mean(stats(8, 2), 1, 1) == pytest.approx(3 / 10)
    assert posterior_mean(stats(8, 2), 2, 6) == pytest.approx(4 / 16)


def test_click_then_accept_of_one_impression_is_one_success() -> None:
    assert posterior_mean(stats(4, 2, 2), 1, 1) == pytest.approx(3 / 6)
    assert posterior_mean(stats(4, 1, 3), 1, 1) == pytest.approx(4 / 6)


def test_successes_never_exceed_trials() -> None:
    # clicks reported without impressions: each one is a trial too, the mean stays <= 1
    assert posterior_mean(stats(0, 5), 1, 1) == pytest.approx(6 / 7)
    assert posterior_mean(stats(2, 9, 9), 1, 1) <= 1.0


def test_the_channel_the_user_engages_with_most_is_chosen() -> None:
    engagement = {Channel.EMAIL: stats(10, 1), Channel.PUSH: stats(10, 6)}
    record = consent({"email": True, "push": True})
    assert pick_channel({Channel.EMAIL, Channel.PUSH}, engagement, record, CHOICE) == (Channel.PUSH)


def test_an_unknown_channel_beats_one_with_poor_engagement() -> None:
    engagement = {Channel.EMAIL: stats(20, 0)}
    record = consent({"email": True, "sms": True})
    assert pick_channel({Channel.EMAIL, Channel.SMS}, engagement, record, CHOICE) is Channel.SMS


def test_ties_go_to_the_users_stated_preference() -> None:
    usable = {Channel.EMAIL, Channel.PUSH, Channel.SMS}
    assert pick_channel(usable, {}, consent({"sms": True, "email": True}), CHOICE) is Channel.SMS
    # equal means from different counts are still a tie: 2/4 == 3/6
    engagement = {Channel.EMAIL: stats(2, 1), Channel.SMS: stats(4, 2)}
    record = consent({"email": True, "sms": True})
    assert pick_channel({Channel.EMAIL, Channel.SMS}, engagement, record, CHOICE) is (Channel.EMAIL)


def test_without_stated_preference_ties_follow_the_default_order() -> None:
    usable = {Channel.EMAIL, Channel.PUSH}
    assert pick_channel(usable, {}, None, CHOICE) is Channel.PUSH
    mine = ChannelChoice(default_order=(Channel.EMAIL,))
    assert pick_channel(usable, {}, None, mine) is Channel.EMAIL


def test_no_usable_channel_gives_none() -> None:
    assert pick_channel(set(), {}, None, CHOICE) is None
