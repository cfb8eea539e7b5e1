"""The benchmark keeps working: a tiny run produces every figure and ratio (no timing asserted)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import redis

from app.bench.runner import BenchOptions, run_bench
from app.settings import Settings

pytestmark = pytest.mark.integration

RATIOS = {
    "throughput_vs_raw_60",
    "throughput_vs_faust_60",
    "faust_vs_raw",
    "throughput_vs_naive",
    "redis_calls_per_event_times_batch",
    "redis_round_trips_per_batch",
    "p99_vs_raw",
    "throughput_under_lookup_flood",
}


def test_a_tiny_benchmark_reports_every_figure(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        redis_url=redis_url,  # type: ignore[arg-type]
        stack_dir=tmp_path,
        web_port=17_066,
    )
    options = BenchOptions(
        events=1_500, users=150, offer_sizes=(60,), batch_size=100, naive_max_events=60,
        naive_budget_s=5.0, latency_s=1.5,
    )  # fmt: skip
    before = bench_keys(redis_url)
    report = run_bench(settings, options, tmp_path / "bench.json")
    assert bench_keys(redis_url) <= before  # every drain's Redis keys were deleted

    assert set(report["ratios"]) == RATIOS
    assert all(math.isfinite(v) and v > 0 for v in report["ratios"].values())
    worker = report["pipeline"]["60"]
    assert worker["events"] == 1_500 and worker["redis_round_trips_per_event"] > 0
    # every event was applied: a workload dated ahead of the clock would be dead-lettered
    assert (worker["events_applied"], worker["dead_lettered"]) == (1_500, 0)
    assert worker["batches"] > 0 and 0 < worker["mean_batch"] <= 100
    assert set(worker["phase_s"]) >= {"decode", "apply", "rank", "commit"}
    assert worker["redis_cpu_us_per_event"] > 0  # Redis's own CPU, read from INFO cpu
    assert report["latency"]["redis_cpu_us_per_event"] > 0
    assert report["faust"]["events"] == 1_500
    assert report["raw"]["peak_rss_mb"] > 0 and report["naive"]["events"] > 0
    assert report["latency"]["pipeline_ms"]["samples"] > 0
    # the drain's cart timers (all due: its events are dated in the past) were all fired before
    # the latency window opened, so it measures the stream, not a backlog of carts
    assert report["latency"]["backlog_carts"] >= report["latency"]["backlog_carts_left"] == 0
    assert isinstance(report["latency"]["redis_aof_rewrites"], int)
    calm = report["lookup_calm"]
    assert calm["events"] == 1_500 and calm["events_applied"] == 1_500 and "flood" not in calm
    flooded = report["lookup_flood"]
    assert flooded["events"] == 1_500 and flooded["events_applied"] == 1_500
    assert flooded["flood"]["requests"] > 0 and "429" in flooded["flood"]["by_status"]
    assert (tmp_path / "bench.json").exists()


def bench_keys(redis_url: str) -> set[bytes]:
    """The benchmark keys in Redis (every run's prefix starts with ``bench-``)."""
    client = redis.Redis.from_url(redis_url)
    try:
        return set(client.scan_iter(match="bench-*", count=1000))
    finally:
        client.close()
