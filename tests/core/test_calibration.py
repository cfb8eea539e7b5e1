"""The match calibration: a monotone score -> probability map, fitted, validated, applied."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from app.core.calibration import (
    MAX_CALIBRATION_BYTES,
    MAX_POINTS,
    Calibration,
    CalibrationError,
    EngineRecipe,
    FittedOn,
    calibrated_scores,
    isotonic_points,
    parse_calibration,
    part_names,
)
from app.core.catalog_records import Offer
from app.core.ranked import RankedOffers

pytestmark = pytest.mark.unit

RECIPE = EngineRecipe(
    model_version="collab-v1", vector_dim=64, w_affinity=0.3, w_value=0.2, w_popularity=0.1,
    w_priority=0.05, w_cooccurrence=0.3, cooccurrence=True, profile_half_life_ms=3_600_000,
    popularity_half_life_ms=604_800_000, recent_items=20, recency_decay=0.8,
)  # fmt: skip
FITTED_ON = FittedOn(
    source="synthetic", period_start_ms=0, period_end_ms=1, offers=10, positives=1, depth=20,
    horizon=10, min_bin=1,
)  # fmt: skip


def calibration(points: list[tuple[float, float]]) -> Calibration:
    return Calibration(target="test", engine=RECIPE, fitted_on=FITTED_ON, points=tuple(points))


def document(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(calibration([(0.0, 0.1), (1.0, 0.5)]).to_json())
    doc.update(changes)
    return doc


def test_the_fit_reproduces_a_known_monotone_relation() -> None:
    rng = np.random.default_rng(7)
    scores = rng.uniform(0.0, 1.0, 200_000)
    truth = lambda s: 0.05 + 0.5 * s**2  # noqa: E731 - the planted relation
    taken = rng.random(scores.size) < truth(scores)
    cal = calibration(isotonic_points(scores, taken, min_bin=1000))
    grid = np.linspace(0.05, 0.95, 19)
    assert np.max(np.abs(cal.probability(grid) - truth(grid))) < 0.03
    fine = cal.probability(np.linspace(-1.0, 2.0, 3001))
    assert np.all(np.diff(fine) >= 0)  # monotone everywhere, also beyond the data


def test_the_fit_never_decreases_even_when_the_data_does() -> None:
    scores = np.arange(1000, dtype=np.float64)
    taken = scores < 300  # low scores taken up, high ones not: the best monotone fit is flat
    points = isotonic_points(scores, taken, min_bin=100)
    probs = [p for _, p in points]
    assert probs == pytest.approx([0.3] * len(probs))
    assert len(points) == 2  # a flat run keeps only its two ends


def test_offers_with_the_same_score_share_a_bin_and_a_short_last_bin_joins_the_one_before() -> None:
    # scores 0,0,0 | 1,2 | 3 (too short: joins 1,2) -> bins {0,0,0} and {1,2,3}
    points = isotonic_points([0, 0, 0, 1, 2, 3], [0, 0, 1, 0, 1, 1], min_bin=2)
    assert points == [(0.0, pytest.approx(1 / 3)), (2.0, pytest.approx(2 / 3))]


def test_the_probability_holds_its_end_values_beyond_the_points_and_interpolates_between() -> None:
    cal = calibration([(0.2, 0.1), (0.6, 0.3)])
    assert cal.probability([0.0, 0.2, 0.4, 0.6, 5.0]).tolist() == pytest.approx(
        [0.1, 0.1, 0.2, 0.3, 0.3]
    )
    assert cal.probability([float("nan"), float("-inf")]).tolist() == [0.1, 0.1]


def test_a_match_is_a_percentage_with_one_decimal() -> None:
    cal = calibration([(0.0, 0.0), (1.0, 1.0)])
    assert cal.match([0.1234, 0.5, 2.0, -1.0]) == [12.3, 50.0, 100.0, 0.0]


def test_a_calibration_file_round_trips() -> None:
    cal = calibration([(0.1, 0.01), (0.5, 0.2), (0.9, 0.4)])
    assert parse_calibration(cal.to_json(), "cal.json") == cal
    assert parse_calibration(cal.to_json().encode(), "cal.json") == cal


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"points": [[0.0, 0.2], [1.0, 0.1]]}, "must not decrease"),
        ({"points": [[0.5, 0.1], [0.5, 0.2]]}, "strictly increasing"),
        ({"points": [[0.0, 0.1], [1.0, 1.5]]}, "less than or equal to 1"),
        ({"points": [[0.0, -0.1], [1.0, 0.5]]}, "greater than or equal to 0"),
        ({"points": [[0.0, "0.1"], [1.0, 0.5]]}, "valid number"),
        ({"points": []}, "at least 1"),
        ({"points": [[float(i), 0.5] for i in range(MAX_POINTS + 1)]}, "at most"),
        ({"version": 2}, "version"),
        ({"format": "other"}, "format"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_a_bad_calibration_file_is_refused_with_its_name_and_the_reason(
    changes: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(CalibrationError, match=r"cal\.json") as raised:
        parse_calibration(json.dumps(document(**changes)), "cal.json")
    assert complaint in str(raised.value)


def test_non_finite_numbers_are_refused() -> None:
    with pytest.raises(CalibrationError, match="finite"):
        parse_calibration(json.dumps(document(points=[[0.0, 0.1], [float("inf"), 0.5]])))
    with pytest.raises(ValidationError):
        calibration([(0.0, float("nan")), (1.0, 0.5)])


def test_an_oversized_calibration_file_is_refused_before_parsing() -> None:
    with pytest.raises(CalibrationError, match="more than"):
        parse_calibration(b" " * (MAX_CALIBRATION_BYTES + 1), "big.json")


def test_recipes_name_what_differs() -> None:
    other = RECIPE.model_copy(update={"w_affinity": 0.7, "model_version": "tags-v1"})
    assert RECIPE.differences(RECIPE) == []
    assert RECIPE.differences(other) == [
        "model_version: 'collab-v1' != 'tags-v1'",
        "w_affinity: 0.3 != 0.7",
    ]


def test_the_calibrated_score_leaves_out_exploration_without_building_rows() -> None:
    offers = [Offer(offer_id=f"o{i}", title="t", channels=("web",)) for i in range(3)]
    affinity, explore = [0.5, 0.4, 0.3], [0.05, 0.0, 0.09]
    scores = [a + e for a, e in zip(affinity, explore, strict=True)]
    lazy = RankedOffers(offers, scores, ("affinity", "exploration"), [affinity, explore])
    assert calibrated_scores(lazy) == pytest.approx(affinity)
    assert lazy.rows_built == 0
    assert calibrated_scores(list(lazy)) == pytest.approx(affinity)
    assert part_names(lazy) == {"affinity", "exploration"} == part_names(list(lazy))


def test_the_calibrated_score_leaves_out_the_restock_lift_too() -> None:
    offers = [Offer(offer_id=f"o{i}", title="t", channels=("web",)) for i in range(2)]
    affinity, explore, restock = [0.5, 0.4], [0.05, 0.0], [0.0, 0.9]
    scores = [a + e + r for a, e, r in zip(affinity, explore, restock, strict=True)]
    names = ("affinity", "exploration", "restock")
    lazy = RankedOffers(offers, scores, names, [affinity, explore, restock])
    assert calibrated_scores(lazy) == pytest.approx(affinity)
    assert calibrated_scores(list(lazy)) == pytest.approx(affinity)
