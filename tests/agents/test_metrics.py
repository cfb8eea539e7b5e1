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
