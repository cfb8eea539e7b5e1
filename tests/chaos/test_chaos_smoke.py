"""The chaos run keeps working: a tiny run of the worker, broker, Redis, failover, poison and
soak scenarios on its own private stack accounts for every event. Its figures (recovery times,
slopes) are reported, not asserted: timing belongs to the full run (``make chaos``)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from app.chaos.runner import ChaosOptions, run_chaos
from app.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

SMOKE = ["worker-kill", "broker-kill", "redis-kill", "redis-failover", "poison", "soak"]


def test_a_tiny_chaos_run_loses_nothing_counts_nothing_twice_and_dead_letters_the_poison(
    tmp_path: Path,
) -> None:
    settings = Settings(stack_dir=tmp_path / "stack",
                        stack_cache_dir=Path(".cache/stack").resolve())  # fmt: skip
    options = dataclasses.replace(ChaosOptions.quick(), kills=1, soak_s=6.0, peak_events=1_000)
    results = run_chaos(settings, options, SMOKE, tmp_path / "chaos.json")

    assert [r.name for r in results] == SMOKE
    for r in results:
        assert not [x for x in r.reasons if x.startswith("did not run")], r.reasons
        assert r.produced > 0 and r.applied == r.produced, r
        assert (r.lost, r.applied_twice, r.unasked_restarts, r.other_dead_letters) == (0, 0, 0, 0)
    by_name = {r.name: r for r in results}
    poison = by_name["poison"]
    assert poison.poison_sent == 15 and poison.poison_dead_lettered == 15
    assert all(by_name[n].recovery_s is not None for n in SMOKE if n != "soak")
    soak = by_name["soak"].notes
    assert soak["peak_events_per_s"] > 0 and soak["latency_samples"] >= 2
    assert {"rss_slope_mb_per_min", "latency_p95_last_third_ms"} <= soak.keys()

    doc = json.loads((tmp_path / "chaos.json").read_text())
    assert [s["name"] for s in doc["scenarios"]] == SMOKE
    assert not (tmp_path / "stack" / "chaos").exists()  # the private stack is gone
