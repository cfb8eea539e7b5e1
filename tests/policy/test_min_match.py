"""Weak offers are not sent: ``min_match`` per channel and the ``below_match`` rejection."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from app.core.enums import Channel
from app.core.ranked import ScoredOffer
from app.policy.config import ContactPolicy, PolicyError, default_policy, parse_policy
from app.policy.consent import ConsentDefaults, ConsentRecord
from app.policy.decision import Decision, Rejection, decide, primary_reason
from app.policy.state import UserPolicyState
from tests.policy.builders import NOON, consent, offer, policy, ranked

pytestmark = pytest.mark.unit

THRESHOLDS = policy(min_match={"push": 10.0, "sms": 10.0, "email": 2.0, "in_app": 1.0, "web": 1.0})
OPTED_IN = consent({"push": True, "sms": True, "email": True})


def run(
    candidates: Sequence[ScoredOffer],
    matches: Sequence[float | None] | None,
    *,
    record: ConsentRecord | None = OPTED_IN,
    pol: ContactPolicy = THRESHOLDS,
    requested_channel: Channel | None = None,
) -> Decision:
    return decide(
        candidates, UserPolicyState(), record, NOON, pol, ConsentDefaults(), max_offers=5,
        requested_channel=requested_channel, matches=matches,
    )  # fmt: skip


def test_the_shipped_thresholds_ask_more_of_push_and_sms_than_of_the_other_channels() -> None:
    shipped = default_policy().min_match
    assert set(shipped) == set(Channel)
    quiet_channels = (Channel.WEB, Channel.IN_APP, Channel.EMAIL)
    for interrupting in (Channel.PUSH, Channel.SMS):
        assert all(shipped[interrupting] > shipped[c] for c in quiet_channels)


def test_a_weak_offer_is_held_back_on_push_with_below_match() -> None:
    d = run(ranked(offer("o1", "push")), [6.0])
    assert not d.sent and d.offers == []
    assert d.rejected == {"below_match": 1} and d.reason == "below_match"
    assert d.held_back == ((1, "o1", 6.0),)


def test_the_same_offer_is_sent_on_web_with_its_match() -> None:
    d = run(ranked(offer("o1", "web")), [6.0])
    assert d.sent and d.channel is Channel.WEB
    assert [s.match for s in d.offers] == [6.0]
    assert d.rejected == {} and d.held_back == ()


def test_an_offer_too_weak_for_push_goes_out_on_web_instead() -> None:
    cands = ranked(offer("o1", "push", "web"))
    assert run(cands, [25.0]).channel is Channel.PUSH  # the user's stated order: push first
    d = run(cands, [6.0])
    assert d.sent and d.channel is Channel.WEB and d.offer_ids == ["o1"]
    assert d.rejected == {}  # usable on web: not rejected


def test_a_strong_offer_leads_on_push_and_a_weak_one_does_not_ride_along() -> None:
    d = run(ranked(offer("o1", "push"), offer("o2", "push"), offer("o3", "push")), [25, 12, 4])
    assert d.sent and d.channel is Channel.PUSH
    assert d.offer_ids == ["o1", "o2"] and [s.match for s in d.offers] == [25, 12]
    assert d.rejected == {"below_match": 1} and d.held_back == ((3, "o3", 4),)


def test_an_offer_at_the_threshold_is_sent() -> None:
    assert run(ranked(offer("o1", "push")), [10.0]).sent


def test_a_transactional_offer_is_never_held_back_for_its_match() -> None:
    d = run(ranked(offer("t1", "push", transactional=True)), [0.0])
    assert d.sent and d.offer_ids == ["t1"]


def test_without_a_calibration_nothing_is_held_back_and_no_match_is_claimed() -> None:
    strict = policy(min_match={c.value: 100.0 for c in Channel})
    d = run(ranked(offer("o1", "push"), offer("o2", "web")), None, pol=strict)
    assert d.sent and d.offer_ids == ["o1"] and d.rejected == {}
    assert [s.match for s in d.offers] == [None]
    assert "held_back" not in d.to_record("u1", "e1", "like")
    assert "match" not in d.to_record("u1", "e1", "like")["offers"][0]


def test_an_offer_without_a_match_among_calibrated_ones_is_not_held_back() -> None:
    d = run(ranked(offer("o1", "push")), [None])
    assert d.sent and d.offer_ids == ["o1"]


def test_earlier_checks_name_the_reason_before_below_match() -> None:
    d = run(ranked(offer("o1", "sms"), offer("o2", "push")), [1.0, 1.0], record=None)
    assert d.rejected == {"consent": 2}  # not consented: never counted as weak
    assert primary_reason({"below_match": 1, "quiet_hours": 1}) == Rejection.QUIET_HOURS.value


def test_the_decision_record_shows_the_held_back_offers_and_the_matches_sent() -> None:
    d = run(ranked(offer("o1", "push"), offer("o2", "push")), [30.0, 3.5])
    record = d.to_record("u1", "e1", "like")
    assert record["rejected"] == {"below_match": 1}
    assert record["held_back"] == [{"offer_id": "o2", "rank": 2, "match": 3.5}]
    assert [(o["offer_id"], o["match"]) for o in record["offers"]] == [("o1", 30.0)]


def test_a_requested_channel_applies_its_own_threshold() -> None:
    cands = ranked(offer("o1", "push", "web"))
    assert not run(cands, [5.0], requested_channel=Channel.PUSH).sent
    assert run(cands, [5.0], requested_channel=Channel.WEB).sent


def test_matches_must_line_up_with_the_candidates() -> None:
    with pytest.raises(ValueError, match="2 matches for 1 candidates"):
        run(ranked(offer("o1", "push")), [1.0, 2.0])


@pytest.mark.parametrize("bad", ["101", "-1", '"10"', "true", "nan"])
def test_a_threshold_outside_0_to_100_or_not_a_number_is_a_policy_error(bad: str) -> None:
    with pytest.raises(PolicyError, match="min_match"):
        parse_policy(f'version = "t"\n[min_match]\npush = {bad}\n')


def test_a_policy_without_min_match_gets_the_shipped_thresholds_and_zero_is_no_threshold() -> None:
    assert parse_policy('version = "t"\n').min_match == default_policy().min_match
    off = parse_policy('version = "t"\n[min_match]\npush = 0\n')
    assert off.match_thresholds == ()
    assert run(ranked(offer("o1", "push")), [0.0], pol=off).sent
