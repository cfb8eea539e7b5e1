from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

import pytest

from app.core.enums import Channel
from app.core.ranked import ScoredOffer
from app.policy.config import ContactPolicy
from app.policy.consent import ConsentDefaults, ConsentRecord
from app.policy.decision import (
    NO_CANDIDATES,
    Decision,
    channel_verdict,
    decide,
    primary_reason,
    record_decision,
    usable_channels,
)
from app.policy.state import ChannelEngagement, UserPolicyState, record_feedback
from tests.policy.builders import DAY, HOUR, NOON, consent, offer, offer_event, policy, ranked

pytestmark = pytest.mark.unit

POLICY = policy()
DEFAULTS = ConsentDefaults()
EMPTY = UserPolicyState()
PUSH_EMAIL = consent({"push": True, "email": True})
TOKYO = "Asia/Tokyo"  # NOON UTC is 21:00 in Tokyo: quiet hours


def run(
    candidates: Sequence[ScoredOffer],
    state: UserPolicyState = EMPTY,
    record: ConsentRecord | None = PUSH_EMAIL,
    now: int = NOON,
    *,
    max_offers: int = 5,
    policy: ContactPolicy = POLICY,
    requested_channel: Channel | None = None,
    tz_hint: str | None = None,
) -> Decision:
    return decide(
        candidates,
        state,
        record,
        now,
        policy,
        DEFAULTS,
        max_offers=max_offers,
        requested_channel=requested_channel,
        tz_hint=tz_hint,
    )


def pushed(*times: int) -> UserPolicyState:
    return UserPolicyState(contacts={Channel.PUSH: times})


def test_an_eligible_offer_is_sent_with_its_channel_and_policy_version() -> None:
    d = run(ranked(offer("o1", "push")))
    assert d.sent and d.channel is Channel.PUSH
    assert d.offer_ids == ["o1"]
    assert d.reason is None and d.rejected == {}
    assert d.policy_version == POLICY.version and d.decided_at == NOON


def test_objection_blocks_every_offer_including_transactional() -> None:
    objected = consent({"push": True}, objection=True)
    cands = ranked(offer("o1", "push"), offer("t1", "push", transactional=True))
    d = run(cands, record=objected)
    assert not d.sent and d.channel is None and d.offers == []
    assert d.reason == "objection"
    assert d.rejected == {"objection": 2} and d.candidate_count == 2


def test_opt_in_channels_without_consent_are_rejected_for_consent() -> None:
    d = run(ranked(offer("o1", "sms"), offer("o2", "email", "web")), record=None)
    assert d.rejected == {"consent": 1}
    assert d.channel is Channel.WEB and d.offer_ids == ["o2"]


def test_explicit_false_on_web_moves_the_offer_to_in_app() -> None:
    d = run(ranked(offer("o1", "web", "in_app")), record=consent({"web": False}))
    assert d.channel is Channel.IN_APP


def test_capped_channel_is_skipped_for_another_usable_channel() -> None:
    d = run(ranked(offer("o1", "push", "email")), state=pushed(NOON - 30 * 60_000))
    assert d.channel is Channel.EMAIL


def test_cap_ends_exactly_at_the_window_edge_after_a_recorded_decision() -> None:
    first = run(ranked(offer("o1", "push")))
    state = record_decision(EMPTY, first, POLICY)
    assert state.contacts == {Channel.PUSH: (NOON,)}
    blocked = run(ranked(offer("o2", "push")), state=state, now=NOON + HOUR - 1)
    assert not blocked.sent and blocked.reason == "cap" and blocked.rejected == {"cap": 1}
    assert run(ranked(offer("o2", "push")), state=state, now=NOON + HOUR).sent


def test_offer_in_cooldown_is_rejected_and_the_next_one_sent() -> None:
    state = record_feedback(EMPTY, offer_event("offer_dismissed", "o1", NOON - DAY))
    d = run(ranked(offer("o1", "push"), offer("o2", "push")), state=state)
    assert d.offer_ids == ["o2"] and d.rejected == {"cooldown": 1}
    later = run(ranked(offer("o1", "push")), state=state, now=NOON + 13 * DAY)
    assert later.sent and later.offer_ids == ["o1"]


def test_quiet_hours_in_the_users_zone_leave_only_non_quiet_channels() -> None:
    record = consent({"push": True}, tz=TOKYO)
    d = run(ranked(offer("o1", "push"), offer("o2", "in_app")), record=record)
    assert d.rejected == {"quiet_hours": 1}
    assert d.channel is Channel.IN_APP and d.tz == TOKYO


def test_event_time_zone_wins_over_the_consent_zone_and_invalid_hints_are_skipped() -> None:
    record = consent({"push": True}, tz=TOKYO)
    assert run(ranked(offer("o1", "push")), record=record, tz_hint="Europe/London").sent
    d = run(ranked(offer("o1", "push")), record=record, tz_hint="Not/AZone")
    assert not d.sent and d.reason == "quiet_hours" and d.tz == TOKYO


def test_default_zone_applies_without_any_valid_zone() -> None:
    night = policy(default_tz=TOKYO)
    d = run(ranked(offer("o1", "push")), record=consent({"push": True}, tz="bogus"), policy=night)
    assert d.reason == "quiet_hours" and d.tz == TOKYO


def test_the_last_check_to_remove_a_channel_names_the_rejection() -> None:
    only_email_quiet = policy(quiet_hours={"channels": ["email"]})
    record = consent({"push": True, "email": True}, tz=TOKYO)
    d = run(
        ranked(offer("o1", "push", "email")),
        state=pushed(NOON - 1),
        record=record,
        policy=only_email_quiet,
    )
    assert d.rejected == {"quiet_hours": 1}


def test_offers_without_any_channel_are_ineligible() -> None:
    d = run(ranked(offer("o1"), offer("o2", "push")))
    assert d.rejected == {"ineligible": 1} and d.offer_ids == ["o2"]


def test_decision_request_restricts_the_message_to_its_channel() -> None:
    engagement = {Channel.PUSH: ChannelEngagement(impressions=10, clicks=9)}
    state = UserPolicyState(engagement=engagement)
    cands = ranked(offer("o1", "push"), offer("o2", "push", "email"), offer("o3", "email"))
    d = run(cands, state=state, requested_channel=Channel.EMAIL)
    assert d.channel is Channel.EMAIL
    assert d.offer_ids == ["o2", "o3"]
    assert d.rejected == {"ineligible": 1}


def test_decision_request_on_an_unconsented_channel_sends_nothing() -> None:
    d = run(ranked(offer("o1", "sms")), requested_channel=Channel.SMS)
    assert not d.sent and d.reason == "consent"


def test_the_best_usable_offer_decides_the_channel_by_engagement() -> None:
    engagement = {
        Channel.PUSH: ChannelEngagement(impressions=20, clicks=1),
        Channel.EMAIL: ChannelEngagement(impressions=20, clicks=10),
    }
    cands = ranked(offer("o1", "push", "email"), offer("o2", "push"), offer("o3", "email"))
    d = run(cands, state=UserPolicyState(engagement=engagement))
    assert d.channel is Channel.EMAIL
    assert d.offer_ids == ["o1", "o3"]  # o2 is usable, but not on email: not rejected
    assert d.rejected == {}


def test_equal_engagement_goes_to_the_stated_preference() -> None:
    d = run(ranked(offer("o1", "push", "email")), record=consent({"email": True, "push": True}))
    assert d.channel is Channel.EMAIL
    d = run(ranked(offer("o1", "push", "email")), record=consent({"push": True, "email": True}))
    assert d.channel is Channel.PUSH


def test_the_message_keeps_rank_order_and_at_most_max_offers() -> None:
    cands = ranked(*(offer(f"o{i}", "push") for i in range(6)))
    assert run(cands, max_offers=3).offer_ids == ["o0", "o1", "o2"]
    with pytest.raises(ValueError):
        run(cands, max_offers=0)


def test_transactional_offer_bypasses_cap_cooldown_and_quiet_hours() -> None:
    state = record_feedback(pushed(NOON - 1), offer_event("offer_dismissed", "t1", NOON - 1))
    record = consent({"push": True}, tz=TOKYO)
    cands = ranked(offer("t1", "push", transactional=True), offer("o2", "push"))
    d = run(cands, state=state, record=record)
    assert d.sent and d.channel is Channel.PUSH
    assert d.offer_ids == ["t1"]  # the marketing offer may not ride along on a capped channel
    assert d.rejected == {"cap": 1}
    assert not d.counts_toward_caps
    assert record_decision(state, d, POLICY) is state


def test_transactional_offers_respect_quiet_hours_when_the_bypass_is_off() -> None:
    strict = policy(quiet_hours={"transactional_bypass": False})
    record = consent({"push": True}, tz=TOKYO)
    d = run(ranked(offer("t1", "push", transactional=True)), record=record, policy=strict)
    assert not d.sent and d.reason == "quiet_hours"


def test_transactional_offers_never_bypass_consent() -> None:
    d = run(ranked(offer("t1", "sms", transactional=True)), record=consent({"sms": False}))
    assert not d.sent and d.rejected == {"consent": 1}


def test_a_message_with_a_marketing_offer_counts_toward_caps() -> None:
    cands = ranked(offer("t1", "push", transactional=True), offer("o2", "push"))
    d = run(cands)
    assert d.offer_ids == ["t1", "o2"] and d.counts_toward_caps
    assert record_decision(EMPTY, d, POLICY).contacts == {Channel.PUSH: (NOON,)}


def test_nothing_eligible_explains_itself_with_counts_and_a_primary_reason() -> None:
    state = record_feedback(pushed(NOON - 1), offer_event("offer_dismissed", "o1", NOON - 1))
    cands = ranked(
        offer("o1", "push"),  # cooldown (checked before cap)
        offer("o2", "push"),  # cap
        offer("o3", "push"),  # cap
        offer("o4", "sms"),  # consent
        offer("o5"),  # ineligible
    )
    d = run(cands, state=state, record=consent({"push": True, "web": False, "in_app": False}))
    assert not d.sent and d.offers == [] and d.channel is None
    assert d.candidate_count == 5
    assert d.rejected == {"cooldown": 1, "cap": 2, "consent": 1, "ineligible": 1}
    assert d.reason == "cap"


def test_primary_reason_ties_go_to_the_earlier_check() -> None:
    assert primary_reason({"quiet_hours": 2, "consent": 2, "cap": 1}) == "consent"
    assert primary_reason({}) == NO_CANDIDATES


def test_no_candidates_means_nothing_sent_for_that_reason() -> None:
    d = run([])
    assert not d.sent and d.reason == NO_CANDIDATES and d.rejected == {}


def test_usable_channels_keep_the_offers_channel_order() -> None:
    channels, why = usable_channels(
        offer("o", "sms", "push", "email", "web"),
        cooling=False,
        consented={Channel.PUSH, Channel.EMAIL, Channel.WEB},
        capped={Channel.EMAIL},
        quiet=set(),
    )
    assert channels == (Channel.PUSH, Channel.WEB) and why is None


def test_users_with_the_same_consent_caps_and_hours_share_the_memoised_verdicts() -> None:
    candidates = ranked(offer("o0", "push", "email"), offer("o1", "sms"), offer("o2", "web"))
    channel_verdict.cache_clear()
    first = run(candidates)
    computed = channel_verdict.cache_info().misses
    again = run(candidates)  # another user in the same situation
    assert channel_verdict.cache_info().misses == computed  # nothing computed anew
    assert channel_verdict.cache_info().hits >= computed
    assert (first.channel, first.offers, first.rejected) == (
        again.channel,
        again.offers,
        again.rejected,
    )
    capped = run(candidates, state=pushed(NOON - 1))  # push now capped: a new combination
    assert capped.channel is Channel.EMAIL and channel_verdict.cache_info().misses > computed


def test_decision_record_is_json_with_trigger_rejections_and_score_parts() -> None:
    state = record_feedback(EMPTY, offer_event("offer_dismissed", "o0", NOON - 1))
    d = run(ranked(offer("o0", "push"), offer("o1", "push"), offer("o2", "push")), state=state)
    record = json.loads(json.dumps(d.to_record("u1", "e42", "like", group="control")))
    assert record["user_id"] == "u1"
    assert record["trigger"] == {"event_id": "e42", "type": "like"}
    assert record["group"] == "control"
    assert record["policy_version"] == POLICY.version
    assert record["decided_at"] == NOON
    assert record["candidate_count"] == 3
    assert record["rejected"] == {"cooldown": 1}
    assert record["sent"] is True and record["reason"] is None
    assert record["channel"] == "push"
    assert [o["offer_id"] for o in record["offers"]] == ["o1", "o2"]
    assert [o["rank"] for o in record["offers"]] == [1, 2]
    assert set(record["offers"][0]["score_parts"]) == {
        "affinity",
        "value",
        "popularity",
        "priority",
    }
    not_sent = run([], record=consent({}, objection=True)).to_record("u1", "e1", "view")
    assert not_sent["sent"] is False and not_sent["reason"] == "objection"
    assert not_sent["channel"] is None and not_sent["offers"] == []


def test_decisions_are_frozen() -> None:
    d = run(ranked(offer("o1", "push")))
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.sent = False  # type: ignore[misc]
