"""The soak's peak: the worker's own only when the generator offered more than it took."""

from __future__ import annotations

import pytest

from app.chaos.runner import LoadedPeak

pytestmark = pytest.mark.unit


def test_a_worker_that_fell_behind_the_generator_measured_its_own_peak() -> None:
    assert not LoadedPeak(committed_per_s=2_000, generated_per_s=4_000).generator_bound


def test_a_worker_that_kept_up_with_the_generator_gives_only_a_lower_bound() -> None:
    assert LoadedPeak(committed_per_s=1_980, generated_per_s=2_000).generator_bound
