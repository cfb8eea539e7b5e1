"""Calibrated match: a monotone map from an offer's score to the probability of its take-up.

A score (:mod:`app.core.scoring`) orders offers; it is not a probability. A
:class:`Calibration` turns it into one: the share of offers with that score that the person
went on to take up, learned offline from a replayed log (``nbo evaluate``, see
``docs/learning.md``) by **isotonic regression** (:func:`isotonic_points`): the best
non-decreasing step function of the score, computed on bins of at least ``min_bin`` offers so
that no handful of offers at the extremes claims certainty, then interpolated linearly
between bin centres. Below the lowest and above the highest point the end values hold.

What is mapped is the score **without its exploration part** (a random Thompson draw that
the offline replay does not have): :func:`calibrated_score`. What the probability means is
the file's ``target`` (``nbo evaluate``: the offer's item is among the user's next
``horizon`` positive events). A calibration is only valid for the engine it was fitted on,
so it carries that engine's recipe (:class:`EngineRecipe`); the worker refuses one that does
not match its own settings.

The file is external input: :func:`parse_calibration` bounds its size, and the model
checks every number (finite, probabilities in [0, 1], scores strictly increasing,
probabilities non-decreasing, at most :data:`MAX_POINTS` points). Pure: numpy and pydantic,
and scipy for the fit only (imported there, so a worker that only applies a calibration does
not load it).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from itertools import pairwise
from typing import Annotated, Final, Literal, Self

import numpy as np
import numpy.typing as npt
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from app.core.decoding import summarise_validation_error
from app.core.ranked import RankedOffers, ScoredOffer

F64 = npt.NDArray[np.float64]

CALIBRATION_FORMAT: Final = "nbo-calibration"
"""The ``format`` of every calibration file."""
CALIBRATION_VERSION: Final = 1
"""The only ``version`` of the calibration file this build reads and writes."""
MAX_CALIBRATION_BYTES = 1_048_576
"""Largest calibration file read, bytes (a fitted one is a few tens of KB)."""
MAX_POINTS = 4096
"""Most points of a calibration."""
DEFAULT_MIN_BIN = 100
"""Default least number of offers per bin before the isotonic fit."""
EXPLORATION_PART = "exploration"
"""A score part left out of the calibrated score (:func:`calibrated_score`)."""
RESTOCK_PART = "restock"
"""A score part left out of the calibrated score (the restock lift, :mod:`app.core.restock`)."""
UNCALIBRATED_PARTS = (EXPLORATION_PART, RESTOCK_PART)
"""Score parts a calibration never sees (taken off the score before it is mapped)."""

Finite = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Probability = Annotated[float, Field(strict=True, ge=0.0, le=1.0, allow_inf_nan=False)]
Text = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=256)]


class CalibrationError(ValueError):
    """A calibration file that cannot be read, parsed, validated or used with this engine."""


class EngineRecipe(BaseModel):
    """How the scores a calibration was fitted on were made: a calibration fitted for one
    recipe says nothing about the scores of another (other weights, other vectors)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_version: Text
    """``NBO_MODEL_VERSION`` of the item vectors (the worker's must be the same)."""
    vector_dim: int = Field(strict=True, ge=1, le=4096)
    w_affinity: Finite
    w_value: Finite
    w_popularity: Finite
    w_priority: Finite
    w_cooccurrence: Finite
    cooccurrence: bool
    """Whether the scores had the co-occurrence part (item neighbours known)."""
    profile_half_life_ms: int = Field(strict=True, gt=0)
    popularity_half_life_ms: int | None = Field(default=None, strict=True, gt=0)
    recent_items: int = Field(strict=True, ge=1)
    recency_decay: Finite
    cooccurrence_exponent: Finite = 1.0
    """Power of the co-occurrence part (1.0 for calibrations written before it existed,
    whose scores had none)."""

    def differences(self, other: EngineRecipe) -> list[str]:
        """``field: ours != theirs`` for every field that differs (empty: the same recipe)."""
        mine, theirs = self.model_dump(), other.model_dump()
        return [f"{k}: {mine[k]!r} != {theirs[k]!r}" for k in mine if mine[k] != theirs[k]]


class FittedOn(BaseModel):
    """Provenance: what the calibration was fitted on (documentation; not used to predict)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: Text
    """The data, e.g. ``movielens:ml-latest-small``."""
    period_start_ms: int = Field(strict=True)
    period_end_ms: int = Field(strict=True)
    """The validation period (event time, epoch ms): never the test period."""
    offers: int = Field(strict=True, ge=0)
    """Offers (query x ranked offer) the fit saw."""
    positives: int = Field(strict=True, ge=0)
    """Of those, the ones whose target happened."""
    depth: int = Field(strict=True, ge=1)
    """Ranked offers per decision used (the top ``depth``)."""
    horizon: int = Field(strict=True, ge=1)
    """The target: the offer's item among the user's next ``horizon`` positive events."""
    min_bin: int = Field(strict=True, ge=1)


class Calibration(BaseModel):
    """A fitted calibration (see module doc); :meth:`probability` and :meth:`match` use it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["nbo-calibration"] = CALIBRATION_FORMAT
    version: Literal[1] = CALIBRATION_VERSION
    method: Literal["isotonic"] = "isotonic"
    target: Text
    """What the probability is of, in words."""
    engine: EngineRecipe
    fitted_on: FittedOn
    points: Annotated[
        tuple[tuple[Finite, Probability], ...], Field(min_length=1, max_length=MAX_POINTS)
    ]
    """``(score, probability)``, scores strictly increasing, probabilities non-decreasing."""

    @model_validator(mode="after")
    def _monotone(self) -> Self:
        scores = [s for s, _ in self.points]
        probs = [p for _, p in self.points]
        if any(b <= a for a, b in pairwise(scores)):
            raise ValueError("points: scores must be strictly increasing")
        if any(b < a for a, b in pairwise(probs)):
            raise ValueError("points: probabilities must not decrease (a monotone map)")
        return self

    @cached_property
    def _arrays(self) -> tuple[F64, F64]:
        """The points as two arrays (built once: the worker maps every decision's scores)."""
        return (
            np.array([s for s, _ in self.points], dtype=np.float64),
            np.array([p for _, p in self.points], dtype=np.float64),
        )

    def probability(self, scores: npt.ArrayLike) -> F64:
        """The calibrated probability of each score (float64, in [0, 1]); a non-finite score
        gets the lowest probability."""
        x = np.asarray(scores, dtype=np.float64)
        xs, ys = self._arrays
        out = np.interp(np.where(np.isfinite(x), x, xs[0]), xs, ys)
        return np.asarray(np.clip(out, 0.0, 1.0), dtype=np.float64)

    def match(self, scores: npt.ArrayLike) -> list[float]:
        """The match percentage (0-100, one decimal) of each calibrated score."""
        return [round(100.0 * p, 1) for p in self.probability(scores).tolist()]

    def to_json(self) -> str:
        """The calibration file's text (indented JSON)."""
        return self.model_dump_json(indent=2)


def parse_calibration(data: bytes | str, source: str = "<calibration>") -> Calibration:
    """A validated :class:`Calibration` from file contents; :class:`CalibrationError` names
    ``source`` and what is wrong (never the values)."""
    size = len(data.encode("utf-8") if isinstance(data, str) else data)
    if size > MAX_CALIBRATION_BYTES:
        raise CalibrationError(f"{source}: {size} bytes, more than {MAX_CALIBRATION_BYTES}")
    try:
        return Calibration.model_validate_json(data)
    except ValidationError as exc:
        raise CalibrationError(f"{source}: {summarise_validation_error(exc)}") from None


def isotonic_points(
    scores: npt.ArrayLike,
    outcomes: npt.ArrayLike,
    min_bin: int = DEFAULT_MIN_BIN,
    max_points: int = MAX_POINTS,
) -> list[tuple[float, float]]:
    """The points of the isotonic calibration of ``outcomes`` (0/1, or any values in [0, 1])
    against ``scores``.

    The offers are sorted by score and cut into bins of at least ``min_bin`` offers (offers
    with the same score share a bin; a short last bin joins the one before); each bin is a
    point at its mean score with its mean outcome, weighted by its size, and the points are
    fitted by weighted isotonic regression (``scipy.optimize.isotonic_regression``). Of a run
    of equal fitted values only its two ends are kept. Deterministic.
    """
    # scipy only here: a worker applies calibrations and never loads it
    from scipy.optimize import isotonic_regression  # type: ignore[import-untyped]

    x = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(outcomes, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"{x.size} scores for {y.size} outcomes")
    if x.size == 0:
        raise ValueError("cannot calibrate on no offers")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("scores and outcomes must be finite")
    if np.any(y < 0) or np.any(y > 1):
        raise ValueError("outcomes must be in [0, 1]")
    if min_bin < 1:
        raise ValueError(f"min_bin must be >= 1, got {min_bin}")
    values, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=y, minlength=values.size)
    bins = _bins(counts.tolist(), min_bin)
    centre, mean, weight = [], [], []
    for start, stop in bins:
        n = float(counts[start:stop].sum())
        centre.append(float((values[start:stop] * counts[start:stop]).sum() / n))
        mean.append(float(sums[start:stop].sum() / n))
        weight.append(n)
    fitted = isotonic_regression(np.array(mean), weights=np.array(weight), increasing=True).x
    fitted = np.clip(fitted, 0.0, 1.0)
    points = _run_ends(centre, [float(v) for v in fitted])
    if len(points) > max_points:
        raise ValueError(f"{len(points)} points, more than {max_points}: raise min_bin")
    return points


def _bins(counts: Sequence[int], min_bin: int) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges of distinct scores holding at least ``min_bin`` offers each
    (a short last one is merged into the one before; a single bin may be short)."""
    out: list[tuple[int, int]] = []
    start, held = 0, 0
    for i, n in enumerate(counts):
        held += n
        if held >= min_bin:
            out.append((start, i + 1))
            start, held = i + 1, 0
    if start < len(counts):
        if out:
            out[-1] = (out[-1][0], len(counts))
        else:
            out.append((start, len(counts)))
    return out


def _run_ends(xs: list[float], ys: list[float]) -> list[tuple[float, float]]:
    """The points with every run of equal ``ys`` reduced to its first and last point."""
    out: list[tuple[float, float]] = []
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        inner = 0 < i < len(xs) - 1 and ys[i - 1] == y == ys[i + 1]
        if not inner:
            out.append((x, y))
    return out


def calibrated_score(offer: ScoredOffer) -> float:
    """The score a calibration maps: the score without its exploration and restock parts
    (a random lift, and the lift of a repeatable item due again: neither was fitted)."""
    return offer.score - sum(offer.parts.get(p, 0.0) for p in UNCALIBRATED_PARTS)


def calibrated_scores(ranked: Sequence[ScoredOffer]) -> list[float]:
    """:func:`calibrated_score` of every ranked offer, without building the rows of a lazy
    :class:`~app.core.ranked.RankedOffers`."""
    if isinstance(ranked, RankedOffers):
        scores = list(ranked.scores)
        for name in UNCALIBRATED_PARTS:
            lift = ranked.part(name)
            if lift is not None:
                scores = [s - e for s, e in zip(scores, lift, strict=True)]
        return scores
    return [calibrated_score(s) for s in ranked]


def part_names(ranked: Sequence[ScoredOffer]) -> frozenset[str]:
    """The score parts a ranking reports (empty for an empty ranking)."""
    if isinstance(ranked, RankedOffers):
        return frozenset(ranked.part_names)
    return frozenset(ranked[0].parts) if ranked else frozenset()
