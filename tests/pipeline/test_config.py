"""One place for each default: the pipeline's configuration is built from the settings, and a
configuration built with defaults is the one a worker with default settings runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from app.core.calibration import CalibrationError
from app.core.defaults import COOCCURRENCE_EXPONENT
from app.core.scoring import ScoringConfig
from app.pipeline.config import PipelineConfig, pipeline_config
from app.settings import Settings
from tests.support.calibration import calibration_for

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _no_nbo_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("NBO_")]:
        monkeypatch.delenv(name)


def test_a_default_configuration_is_the_one_default_settings_build() -> None:
    assert pipeline_config(Settings(_env_file=None)) == PipelineConfig()


def test_every_score_weight_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    weights = {"w_affinity": 0.11, "w_value": 0.22, "w_popularity": 0.33, "w_priority": 0.44,
               "w_cooccurrence": 0.55, "w_restock": 0.66}  # fmt: skip
    for name, value in weights.items():
        monkeypatch.setenv(f"NBO_{name.upper()}", str(value))
    scoring = pipeline_config(Settings(_env_file=None)).scoring
    assert {name: getattr(scoring, name) for name in weights} == weights
    assert set(ScoringConfig.weight_names()) == set(weights)


def test_the_restock_settings_reach_the_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBO_RESTOCK_DUE_FRACTION", "0.5")
    monkeypatch.setenv("NBO_RESTOCK_SMOOTHING", "0.25")
    monkeypatch.setenv("NBO_RESTOCK_PRIOR_DAYS", "2")
    monkeypatch.setenv("NBO_RESTOCK_ITEMS_MAX", "7")
    restock = pipeline_config(Settings(_env_file=None)).restock
    assert (restock.due_fraction, restock.smoothing, restock.prior_ms, restock.items_max) == (
        0.5, 0.25, 2 * 86_400_000, 7,
    )  # fmt: skip


def test_event_weights_are_a_setting_and_unnamed_types_keep_their_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NBO_EVENT_WEIGHTS", '{"purchase": 8, "rating_scale": 1.5}')
    weights = pipeline_config(Settings(_env_file=None)).weights
    assert (weights.purchase, weights.rating_scale, weights.view) == (8.0, 1.5, 1.0)


def test_an_unknown_event_type_in_the_event_weights_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NBO_EVENT_WEIGHTS", '{"teleport": 3}')
    with pytest.raises(ValueError, match="teleport"):
        Settings(_env_file=None)


def test_without_a_calibration_path_the_pipeline_has_no_calibration() -> None:
    assert pipeline_config(Settings(_env_file=None)).calibration is None


def test_a_calibration_fitted_for_this_engine_is_loaded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fitted = calibration_for(PipelineConfig(), [(0.0, 0.01), (1.0, 0.3)])
    path = tmp_path / "cal.json"
    path.write_text(fitted.to_json(), encoding="utf-8")
    monkeypatch.setenv("NBO_CALIBRATION_PATH", str(path))
    assert pipeline_config(Settings(_env_file=None)).calibration == fitted


def test_a_calibration_fitted_for_another_engine_is_refused_naming_the_differences(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    other = PipelineConfig(scoring=ScoringConfig(w_affinity=0.3), model_version="collab-v1")
    path = tmp_path / "cal.json"
    path.write_text(calibration_for(other, [(0.0, 0.1)]).to_json(), encoding="utf-8")
    monkeypatch.setenv("NBO_CALIBRATION_PATH", str(path))
    with pytest.raises(CalibrationError, match="another engine") as raised:
        pipeline_config(Settings(_env_file=None))
    assert "model_version: 'collab-v1' != 'tags-v1'" in str(raised.value)
    assert "w_affinity: 0.3 != 0.7" in str(raised.value)


def test_a_calibration_written_before_the_cooccurrence_exponent_is_refused_by_todays_engine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    document = json.loads(calibration_for(PipelineConfig(), [(0.0, 0.1)]).to_json())
    del document["engine"]["cooccurrence_exponent"]  # a file from before the field existed
    path = tmp_path / "old.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    monkeypatch.setenv("NBO_CALIBRATION_PATH", str(path))
    with pytest.raises(CalibrationError, match="another engine") as raised:
        pipeline_config(Settings(_env_file=None))
    # its scores had the part as it was (power 1): not what this engine's scores are
    assert f"cooccurrence_exponent: 1.0 != {COOCCURRENCE_EXPONENT}" in str(raised.value)


def test_a_missing_or_broken_calibration_file_is_an_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NBO_CALIBRATION_PATH", str(tmp_path / "none.json"))
    with pytest.raises(CalibrationError, match=r"none\.json: cannot read"):
        pipeline_config(Settings(_env_file=None))
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    monkeypatch.setenv("NBO_CALIBRATION_PATH", str(tmp_path / "bad.json"))
    with pytest.raises(CalibrationError, match=r"bad\.json"):
        pipeline_config(Settings(_env_file=None))


def test_the_shipped_movielens_calibration_fits_the_documented_collab_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shipped = Path(__file__).parents[2] / "docs" / "evaluation" / "ml-latest-small-calibration.json"
    monkeypatch.setenv("NBO_CALIBRATION_PATH", str(shipped))
    with pytest.raises(CalibrationError, match="another engine"):  # not the default engine's
        pipeline_config(Settings(_env_file=None))
    collab = {"NBO_MODEL_VERSION": "collab-v1", "NBO_W_AFFINITY": "0.3",
              "NBO_HALF_LIFE_S": "3600", "NBO_POPULARITY_HALF_LIFE_S": "604800"}  # fmt: skip
    for name, value in collab.items():  # docs/learning.md, "Using it in the worker"
        monkeypatch.setenv(name, value)
    calibration = pipeline_config(Settings(_env_file=None)).calibration
    assert calibration is not None and calibration.engine.cooccurrence
    assert calibration.fitted_on.source == "movielens:ml-latest-small"
