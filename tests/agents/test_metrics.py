"""The worker's metrics: batch outcomes and the times of its first and latest batch."""

from __future__ import annotations

import time

import pytest

from agents.metrics import WorkerMetrics
from app.pipeline.stats import BatchStats

pytestmark = pytest.mark.agents


def sample(metrics: WorkerMetrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name)
    assert value is not None, name
    return value


def test_the_first_batch_start_is_kept_and_the_latest_batch_end_moves_on() -> None:
    metrics = WorkerMetrics()
    assert sample(metrics, "nbo_first_batch_started_seconds") == 0.0
    before = time.time()
    metrics.record_batch(BatchStats(received=10), seconds=0.5)
    first = sample(metrics, "nbo_first_batch_started_seconds")
    done = sample(metrics, "nbo_last_batch_done_seconds")
    assert before - 0.5 <= first <= done - 0.5 + 1e-3
    time.sleep(0.01)
    metrics.record_batch(BatchStats(received=5), seconds=0.001)
    assert sample(metrics, "nbo_first_batch_started_seconds") == first
    assert sample(metrics, "nbo_last_batch_done_seconds") > done
    assert sample(metrics, "nbo_events_received_total") == 15


def test_suppressions_sends_and_feedback_are_counted_by_reason_channel_and_offer() -> None:
    metrics = WorkerMetrics()
    stats = BatchStats(
        decisions=5,
        suppressed=3,
        suppressed_by_reason={"cap": 2, "consent": 1},
        sent_by_group={("personalised", "push"): 1, ("control", "email"): 1},
        feedback_by_group={("control", "offer_accepted", "email"): 1},
        sent_by_offer={"o1": 2, "o2": 1},
    )
    metrics.record_batch(stats, 0.01)
    metrics.record_batch(stats, 0.01)
    get = metrics.registry.get_sample_value
    assert get("nbo_decisions_suppressed_total", {"reason": "cap"}) == 4
    assert get("nbo_decisions_suppressed_total", {"reason": "consent"}) == 2
    assert get("nbo_offers_sent_by_group_total", {"group": "control", "channel": "email"}) == 2
    labels = {"group": "control", "type": "offer_accepted", "channel": "email"}
    assert get("nbo_offer_feedback_by_group_total", labels) == 2
    assert get("nbo_offers_sent_by_offer_total", {"offer": "o1"}) == 4


def test_offer_ids_past_the_label_bound_share_one_series(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("agents.metrics.MAX_OFFER_LABELS", 2)
    metrics = WorkerMetrics()
    metrics.record_batch(BatchStats(sent_by_offer={"o1": 1, "o2": 1, "o3": 1, "o4": 2}), 0.01)
    metrics.record_batch(BatchStats(sent_by_offer={"o1": 1, "o5": 1}), 0.01)
    get = metrics.registry.get_sample_value
    assert get("nbo_offers_sent_by_offer_total", {"offer": "o1"}) == 2
    assert get("nbo_offers_sent_by_offer_total", {"offer": "o2"}) == 1
    assert get("nbo_offers_sent_by_offer_total", {"offer": "_other"}) == 4
    assert get("nbo_offers_sent_by_offer_total", {"offer": "o3"}) is None
