"""The Overview page's arithmetic: figures per window, lag, dead letters, a worker's text."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from agents.metrics import WorkerMetrics
from app.console.history import History, Scrape, key
from app.console.overview import (
    DECISIONS,
    MESSAGE_CHARS,
    RECEIVED,
    SENT_BY_GROUP,
    SUPPRESSED,
    KafkaView,
    PartitionLag,
    WorkerStatus,
    dead_letter,
    lag_rows,
    overview,
    read_worker,
)
from app.pipeline.stats import BatchStats

pytestmark = pytest.mark.unit


def test_lag_is_end_less_committed_and_from_the_log_start_without_a_commit() -> None:
    rows = lag_rows({0: 100, 1: 50, 2: 70}, {0: 90, 2: 5}, {0: 0, 1: 20, 2: 10})
    assert rows == (
        PartitionLag(0, 100, 90, 10),
        PartitionLag(1, 50, None, 30),  # nothing committed: everything retained is unread
        PartitionLag(2, 70, 5, 60),  # the commit fell behind retention: from the log start
    )
    assert KafkaView(rows).total_lag == 100


def test_a_dead_letter_is_shown_from_its_headers_and_its_message_is_cut() -> None:
    headers = [
        ("nbo.error.class", b"InvalidJson"),
        ("nbo.error.message", b"x" * 1000),
        ("nbo.original.topic", b"user-events"),
        ("nbo.original.partition", b"3"),
        ("nbo.original.offset", b"41"),
        ("nbo.failed_at", b"2026-12-05T09:00:00Z"),
    ]
    letter = dead_letter(0, 7, headers)
    assert letter.error_class == "InvalidJson" and letter.original == "user-events/3@41"
    assert len(letter.message) == MESSAGE_CHARS and letter.failed_at.startswith("2026")
    assert dead_letter(0, 8, []).error_class == "?"


def test_the_figures_per_window_from_the_history() -> None:
    history = History(1000)
    for i in range(0, 721):  # two hours, every 10 s
        values = {
            key(RECEIVED): 10.0 * i,  # 1 event per second
            key(SENT_BY_GROUP, group="personalised", channel="push"): 2.0 * i,
            key(SENT_BY_GROUP, group="control", channel="push"): 1.0 * i,
            key(SENT_BY_GROUP, group="personalised", channel="email"): 1.0 * i,
            key(DECISIONS, outcome="sent"): 4.0 * i,
            key(DECISIONS, outcome="suppressed"): 1.0 * i,
            key(SUPPRESSED, reason="cap"): 1.0 * i,
        }
        history.add(10.0 * i, [Scrape("w1", values)])
    view = overview(history, [WorkerStatus("w1", True)], KafkaView())
    assert view.windows == (("last 5 minutes", 300.0), ("last hour", 3600.0))
    received = {f.label: f for f in view.events}["received"]
    assert [w.per_s for w in received.windows] == [1.0, 1.0]
    channels = {f.label: [w.increase for w in f.windows] for f in view.sent_by_channel}
    assert channels == {"email": [30.0, 360.0], "push": [90.0, 1080.0]}
    assert [f.label for f in view.decisions] == ["sent", "suppressed"]
    assert [(f.label, f.windows[1].increase) for f in view.suppressed] == [("cap", 360.0)]


def test_a_short_history_reports_the_span_it_covers() -> None:
    history = History(100)
    history.add(0.0, [Scrape("w1", {key(RECEIVED): 0.0})])
    history.add(90.0, [Scrape("w1", {key(RECEIVED): 180.0})])
    view = overview(history, [], KafkaView())
    assert view.windows == (("last 5 minutes", 90.0), ("last hour", 90.0))
    assert [w.per_s for w in view.events[0].windows] == [2.0, 2.0]


def test_a_workers_metrics_text_gives_its_counters_and_batch_clocks() -> None:
    metrics = WorkerMetrics()
    metrics.record_batch(
        BatchStats(
            received=7,
            decisions=2,
            suppressed=1,
            suppressed_by_reason={"consent": 1},
            sent_by_group={("personalised", "push"): 1},
            sent_by_offer={"o1": 1},
        ),
        0.01,
    )
    scrape, status = read_worker("http://w1/metrics", generate_latest(metrics.registry).decode())
    assert scrape.values[key(RECEIVED)] == 7.0
    assert scrape.values[key(SUPPRESSED, reason="consent")] == 1.0
    assert scrape.values[key(SENT_BY_GROUP, channel="push", group="personalised")] == 1.0
    assert scrape.values[key("nbo_offers_sent_by_offer_total", offer="o1")] == 1.0
    assert status.alive and status.last_batch_s >= status.first_batch_s > 0
    assert not [k for k in scrape.values if k[0].endswith("_seconds")]
