"""The Lift page's counts read from the workers' Prometheus text."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from agents.metrics import WorkerMetrics
from app.console.lift import GroupCounts
from app.console.sources import DAY_S, combine, worker_counts
from app.pipeline.stats import BatchStats

pytestmark = pytest.mark.unit


def metrics_text(sent: dict[str, int], accepted: dict[str, int]) -> str:
    metrics = WorkerMetrics()
    stats = BatchStats(
        sent_by_group=sent,
        feedback_by_group={(g, "offer_accepted"): n for g, n in accepted.items()}
        | {("personalised", "offer_clicked"): 99},
    )
    metrics.record_batch(stats, 0.01)
    return generate_latest(metrics.registry).decode()


def test_the_workers_holdout_counters_are_read_and_summed() -> None:
    one = worker_counts(metrics_text({"personalised": 900, "control": 50}, {"personalised": 90}))
    two = worker_counts(metrics_text({"personalised": 100, "control": 50}, {"control": 4}))
    assert one.first_batch_s > 0
    channel, days = combine([one, two], now_s=min(one.first_batch_s, two.first_batch_s) + DAY_S)
    assert channel.personalised == GroupCounts(1000, 90)  # clicks are not acceptances
    assert channel.control == GroupCounts(100, 4)
    assert days == pytest.approx(1.0, abs=1e-3)


def test_workers_without_a_batch_give_zero_days() -> None:
    idle = worker_counts(generate_latest(WorkerMetrics().registry).decode())
    channel, days = combine([idle], now_s=1e9)
    assert channel.personalised == GroupCounts(0, 0) and days == 0.0
