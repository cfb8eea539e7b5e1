"""The worker's collector settings: raised thresholds, and the startup heap frozen."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from agents.heap import THRESHOLDS, freeze_heap, tune_collector

pytestmark = pytest.mark.agents


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_tuning_raises_the_thresholds_above_the_defaults() -> None:
    tune_collector()
    assert gc.get_threshold() == THRESHOLDS
    assert all(ours > default for ours, default in zip(THRESHOLDS, (700, 10, 10), strict=True))


@pytest.mark.usefixtures("restored_collector")
def test_freezing_moves_the_live_objects_out_of_reach_of_later_collections() -> None:
    survivor = {"kept": [1, 2, 3]}
    freeze_heap()
    assert gc.get_freeze_count() > 0
    assert not any(o is survivor for o in gc.get_objects())  # no generation holds it now
