"""Tuning on the validation period inside the training data."""

from __future__ import annotations

import pytest

from app.evaluation.config import EvaluationConfig
from app.evaluation.split import temporal_split
from app.evaluation.tuning import get_param, tune, validation_log, with_param
from app.learning.model import CollabConfig
from tests.support.planted import chain_log

pytestmark = pytest.mark.unit


def test_with_param_sets_nested_fields_and_validates() -> None:
    cfg = EvaluationConfig()
    changed = with_param(cfg, "collab.cooccurrence.window", 9)
    assert get_param(changed, "collab.cooccurrence.window") == 9
    assert get_param(cfg, "collab.cooccurrence.window") != 9
    assert with_param(cfg, "k_max", 7).k_max == 7
    with pytest.raises(ValueError):
        with_param(cfg, "collab.tag_blend", 2.0)


def test_tuning_never_looks_at_the_test_period() -> None:
    planted = chain_log()
    inner = validation_log(planted.log, 0.8)
    split = temporal_split(planted.log.ts_ms, 0.8)
    assert int(inner.ts_ms.max()) < split
    assert len(inner) == int((planted.log.ts_ms < split).sum())


def test_tuning_finds_the_cooccurrence_part_on_chains() -> None:
    planted = chain_log(n_users=80)
    base = with_param(
        EvaluationConfig(collab=CollabConfig(dim=4)), "collab.hybrid.w_cooccurrence", 0.0
    )
    trials: list[tuple[str, object, float]] = []
    result = tune(
        planted.log,
        planted.items,
        None,
        base,
        grid={"collab.hybrid.w_cooccurrence": (0.0, 1.0)},
        k=1,
        on_trial=lambda p, v, s: trials.append((p, v, s)),
    )
    assert result.chosen({"collab.hybrid.w_cooccurrence": ()}) == {
        "collab.hybrid.w_cooccurrence": 1.0
    }
    assert trials == result.trials
    assert result.score > 0.5
