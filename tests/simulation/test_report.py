"""The report's arithmetic on hand-made decisions whose figures are known."""

from __future__ import annotations

import json

import pytest

from app.simulation.report import (
    DAY_MS,
    Decision,
    Feedback,
    acceptance_rate,
    acceptance_rates,
    changed_users,
    concentration,
    days_of,
    parse_decision,
    summarise,
)

pytestmark = pytest.mark.unit


def sent(user: str, offer: str, channel: str = "push", event: str = "e", at: int = 0) -> Decision:
    return Decision(user, (event, "view"), at, True, channel, None, {}, (offer, "other"))


def held(user: str, reason: str, event: str = "e", cap: int = 0) -> Decision:
    rejected = {"cap": cap} if cap else {"consent": 3}
    return Decision(user, (event, "view"), 0, False, None, reason, rejected, ())


def test_concentration_is_the_top_share_and_the_sum_of_squared_shares() -> None:
    share, hhi = concentration({"a": 6, "b": 3, "c": 1}, top=2)
    assert share == pytest.approx(0.9)
    assert hhi == pytest.approx(0.36 + 0.09 + 0.01)
    assert concentration({}) == (0.0, 0.0)


def test_acceptance_rates_are_posterior_means_under_one_acceptance_in_twenty() -> None:
    rates = acceptance_rates({"a": Feedback(shown=80, accepted=9), "b": Feedback(accepted=3)})
    assert rates["a"] == pytest.approx(10 / 100)
    assert rates["b"] == pytest.approx(4 / 23)  # acceptances without impressions count as shown
    assert acceptance_rate() == pytest.approx(0.05)


def test_expected_acceptances_sum_the_rate_of_each_messages_lead_offer() -> None:
    decisions = [sent("u1", "a"), sent("u2", "a"), sent("u3", "b"), held("u4", "cap", cap=2)]
    summary = summarise(decisions, users=5, days=1.0, rates={"a": 0.1})
    assert summary.expected_acceptances == pytest.approx(0.1 + 0.1 + 0.05)  # b: the prior


def test_per_day_rates_divide_by_the_counted_days_and_at_least_one() -> None:
    decisions = [sent("u1", "a", "push"), *(sent("u2", "b", "email") for _ in range(4))]
    summary = summarise(decisions, users=2, days=days_of(2 * DAY_MS), rates={})
    assert summary.per_day_by_channel == {"email": 2.0, "push": 0.5}
    assert days_of(DAY_MS // 4) == 1.0


def test_reach_suppressions_and_cap_hits_are_counted_per_decision() -> None:
    decisions = [
        sent("u1", "a"),
        Decision("u1", ("e2", "view"), 0, True, "web", None, {"cap": 1}, ("b",)),
        held("u2", "cap", cap=4),
        held("u2", "consent"),
        held("u3", "quiet_hours"),
    ]
    summary = summarise(decisions, users=4, days=1.0, rates={})
    assert (summary.messages, summary.users_reached, summary.reach_share) == (2, 1, 0.25)
    assert summary.suppressions == {"cap": 1, "consent": 1, "quiet_hours": 1}
    assert (summary.cap_hits, summary.cap_suppressions) == (2, 1)
    assert summary.top_offers == [("a", 1), ("b", 1)]
    assert summary.messages_by_channel == {"push": 1, "web": 1}


def test_users_are_ranked_by_triggers_decided_differently() -> None:
    current = [sent("u1", "a", event="e1", at=1), sent("u1", "a", event="e2", at=2),
               sent("u2", "a", event="e3"), sent("u3", "a", event="e4")]  # fmt: skip
    candidate = [sent("u1", "a", event="e1", at=1), held("u1", "cap", event="e2"),
                 sent("u2", "b", event="e3"), sent("u3", "a", event="e4"),
                 sent("u2", "a", event="e5")]  # fmt: skip
    changes = changed_users(current, candidate, n=5)
    assert [(c.user_id, c.changed) for c in changes] == [("u2", 2), ("u1", 1)]
    assert changes[0].trigger == ("e3", "view")
    assert changes[1].current is not None and changes[1].current.sent
    assert changes[1].candidate is not None and changes[1].candidate.reason == "cap"


def test_a_decision_record_is_read_as_the_worker_writes_it() -> None:
    record = {"user_id": "u1", "trigger": {"event_id": "e42", "type": "like"},
              "decided_at": 5, "sent": False, "reason": "cap", "channel": None,
              "rejected": {"cap": 3, "consent": 1}, "offers": []}  # fmt: skip
    d = parse_decision(json.dumps(record).encode())
    assert (d.trigger, d.reason, d.lead) == (("e42", "like"), "cap", None)
    assert d.rejected == {"cap": 3, "consent": 1}
    assert d.describe() == "suppressed (cap; cap 3, consent 1)"


def test_the_report_arithmetic_imports_no_io_library() -> None:
    from tests.test_architecture import IO_LIBRARIES, ROOT, imported

    names = imported(ROOT / "app" / "simulation" / "report.py")
    assert not [n for n in names if n.split(".")[0] in IO_LIBRARIES]
