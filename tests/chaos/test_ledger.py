"""The chaos run's bookkeeping: losses and double counts per user, trends, the pass rule."""

from __future__ import annotations

import pytest

from app.chaos.ledger import Produced, SoakRule, Tally, tally, trend, verdict

pytestmark = pytest.mark.unit


def test_an_event_sent_again_counts_once() -> None:
    produced = Produced()
    for user, event in [("a", "e1"), ("a", "e1"), ("a", "e2"), ("b", "e3")]:
        produced.add(user, event)
    assert produced.per_user == {"a": 2, "b": 1} and produced.total == 3


def test_a_loss_and_a_double_count_of_two_users_do_not_cancel_out() -> None:
    counts = tally({"a": 3, "b": 2, "c": 1}, {"a": 2, "b": 3, "c": 1, "stranger": 1})
    assert counts == Tally(produced=6, applied=7, lost=1, applied_twice=2)


def test_a_user_never_applied_is_all_lost() -> None:
    assert tally({"a": 4}, {}).lost == 4


def test_a_trend_is_the_least_squares_line_per_minute() -> None:
    line = trend([0, 60, 120, 180], [100.0, 102.0, 104.0, 106.0])
    assert line.slope_per_min == pytest.approx(2.0)
    assert line.start == pytest.approx(100.0) and line.change == pytest.approx(6.0)
    with pytest.raises(ValueError):
        trend([0.0], [1.0])
    with pytest.raises(ValueError):
        trend([5.0, 5.0], [1.0, 2.0])


def test_a_soak_is_flat_within_the_rule() -> None:
    rule = SoakRule()
    assert rule.memory_flat(trend([0, 600], [200.0, 209.0]))  # 9 MB < 10 MB floor
    assert not rule.memory_flat(trend([0, 600], [400.0, 430.0]))  # 30 MB > 5 % of 400
    assert rule.latency_flat(100.0, 190.0) and not rule.latency_flat(100.0, 250.0)


def test_the_pass_rule_names_every_failure() -> None:
    clean = Tally(10, 10, 0, 0)
    good = verdict(clean, poison_sent=2, poison_dead_lettered=2, other_dead_letters=0,
                   unasked_restarts=0, recovered=True)  # fmt: skip
    assert good.passed and good.reasons == ()
    bad = verdict(Tally(10, 9, 2, 1), poison_sent=2, poison_dead_lettered=1, other_dead_letters=3,
                  unasked_restarts=1, recovered=False, flat=False)  # fmt: skip
    assert not bad.passed
    assert bad.reasons == ("2 lost", "1 applied twice", "1 of 2 poison records dead-lettered",
                           "3 good records dead-lettered", "1 worker restarts not asked for",
                           "did not recover in time", "memory or latency not flat")  # fmt: skip
