"""The Lift page's counts read from the workers' Prometheus text."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from agents.metrics import WorkerMetrics
from app.console.lift import GroupCounts
from app.console.sources import DAY_S, combine, worker_counts
from app.pipeline.stats import BatchStats

pytestmark = pytest.mark.unit


def metrics_text(sent: dict[tuple[str, str], int], accepted: dict[tuple[str, str], int]) -> str:
    metrics = WorkerMetrics()
    stats = BatchStats(
        sent_by_group=sent,
        feedback_by_group={(g, "offer_accepted", c): n for (g, c), n in accepted.items()}
        | {("personalised", "offer_clicked", "push"): 99},
    )
    metrics.record_batch(stats, 0.01)
    return generate_latest(metrics.registry).decode()


def test_the_workers_holdout_counters_are_read_and_summed_per_channel() -> None:
    one = worker_counts(
        metrics_text(
            {("personalised", "push"): 900, ("control", "push"): 50},
            {("personalised", "push"): 90},
        )
    )
    two = worker_counts(
        metrics_text(
            {("personalised", "email"): 100, ("control", "email"): 50},
            {("control", "email"): 4, ("personalised", "unknown"): 7},
        )
    )
    assert one.first_batch_s > 0
    rows, days = combine([one, two], now_s=min(one.first_batch_s, two.first_batch_s) + DAY_S)
    by_channel = {row.channel: row for row in rows}
    assert [row.channel for row in rows] == ["email", "push", "all"]
    assert by_channel["push"].personalised == GroupCounts(900, 90)  # clicks are not acceptances
    assert by_channel["email"].control == GroupCounts(50, 4)
    assert by_channel["email"].personalised == GroupCounts(100, 0)
    # an acceptance whose event named no channel counts in "all" only
    assert by_channel["all"].personalised == GroupCounts(1000, 97)
    assert by_channel["all"].control == GroupCounts(100, 4)
    assert days == pytest.approx(1.0, abs=1e-3)


def test_a_worker_without_channel_labels_counts_in_all_only() -> None:
    text = (
        "# TYPE nbo_offers_sent_by_group_total counter\n"
        'nbo_offers_sent_by_group_total{group="personalised"} 10\n'
        "# TYPE nbo_offer_feedback_by_group_total counter\n"
        'nbo_offer_feedback_by_group_total{group="personalised",type="offer_accepted"} 3\n'
    )
    rows, _ = combine([worker_counts(text)], now_s=1e9)
    assert [(r.channel, r.personalised) for r in rows] == [("all", GroupCounts(10, 3))]


def test_workers_without_a_batch_give_zero_days() -> None:
    idle = worker_counts(generate_latest(WorkerMetrics().registry).decode())
    rows, days = combine([idle], now_s=1e9)
    assert rows[-1].personalised == GroupCounts(0, 0) and days == 0.0
