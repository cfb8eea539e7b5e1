"""Tuning ``engine_collab`` on a validation period inside the training data.

The events before the evaluation's split are split again at the same quantile: the model
learns from the first part and is scored (HitRate@K of ``engine_collab``) on the second, by
the very replay of :func:`~app.evaluation.evaluate.evaluate`. The test period is never looked
at. Parameters are tuned one at a time (coordinate ascent) over a small grid, in rounds; a
value replaces the current one only if it scores better by more than ``min_gain`` (default
0.001 HitRate, below which differences are noise on ml-latest-small's validation period).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel

from app.core.catalog_records import Item, Offer
from app.core.profile import DAY_MS
from app.evaluation.config import ENGINE_COLLAB, EvaluationConfig
from app.evaluation.evaluate import evaluate
from app.evaluation.split import temporal_split
from app.learning.interactions import InteractionLog
from app.learning.model import CollabModel, train_collab_model

HOUR_MS = 3_600_000

DEFAULT_GRID: dict[str, tuple[Any, ...]] = {
    "collab.hybrid.w_cooccurrence": (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0),
    "collab.hybrid.scoring.w_affinity": (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0),
    "collab.hybrid.scoring.w_popularity": (0.0, 0.05, 0.1, 0.2, 0.3, 0.4),
    "collab.profile.half_life_ms": (HOUR_MS, 6 * HOUR_MS, DAY_MS, 7 * DAY_MS, 30 * DAY_MS),
    "collab.popularity_half_life_ms": (HOUR_MS, 6 * HOUR_MS, DAY_MS, 7 * DAY_MS, 30 * DAY_MS),
    "collab.hybrid.recent.n_recent": (5, 10, 20, 50),
    "collab.hybrid.recent.recency_decay": (0.5, 0.7, 0.8, 0.9, 1.0),
    "collab.hybrid.recent.exponent": (0.5, 0.6, 0.7, 0.8, 1.0),
    "collab.ease.lam": (300.0, 1000.0, 2000.0, 4000.0),
    "collab.ease.window": (5, 10, 15, 20, 40),
    "collab.user_ease_share": (0.0, 0.1, 0.2, 0.3, 0.5),
    "collab.user_ease.lam": (100.0, 300.0, 1000.0),
    "collab.cooccurrence.window": (2, 5, 10, 20),
    "collab.cooccurrence.distance_decay": (0.7, 0.85, 1.0),
    "collab.cooccurrence.popularity_exponent": (0.0, 0.15, 0.3, 0.5),
    "collab.cooccurrence.max_neighbours": (50, 100, 200),
    "collab.factorisation.confidence_floor": (0.0, 1.0),
    "collab.factorisation.bm25_b": (0.5, 0.75, 0.9),
    "collab.factorisation.singular_power": (0.25, 0.5, 1.0),
    "collab.tag_blend": (0.0, 0.1, 0.2, 0.4),
}
"""Parameters (dotted paths into :class:`EvaluationConfig`) and the values tried."""

LEARNING_FIELDS = {
    "dim",
    "factorisation",
    "tag_blend",
    "neighbours",
    "ease",
    "user_ease",
    "user_ease_share",
    "cooccurrence",
    "neighbour_blend",
}
"""Fields of :class:`CollabConfig` that need a new model; the others only change how the
engine uses it (a trained model is reused across those)."""
MODELS_KEPT = 3
"""Trained models kept in memory while tuning."""


def with_param(cfg: EvaluationConfig, path: str, value: Any) -> EvaluationConfig:
    """A copy of ``cfg`` with the field at dotted ``path`` set to ``value`` (validated)."""
    head, _, rest = path.partition(".")
    if not rest:
        return type(cfg).model_validate({**cfg.model_dump(), head: value})
    return cfg.model_copy(update={head: _set(getattr(cfg, head), rest, value)})


def _set(model: BaseModel, path: str, value: Any) -> BaseModel:
    head, _, rest = path.partition(".")
    if not rest:
        return type(model).model_validate({**model.model_dump(), head: value})
    return model.model_copy(update={head: _set(getattr(model, head), rest, value)})


def get_param(cfg: BaseModel, path: str) -> Any:
    """The value of the field at dotted ``path``."""
    value: Any = cfg
    for part in path.split("."):
        value = getattr(value, part)
    return value


@dataclass
class TuningResult:
    """The tuned configuration and every trial: ``(path, value, score)`` in order."""

    config: EvaluationConfig
    score: float
    trials: list[tuple[str, Any, float]] = field(default_factory=list)

    def chosen(self, grid: Mapping[str, Sequence[Any]] = DEFAULT_GRID) -> dict[str, Any]:
        """The tuned value of each parameter of ``grid``."""
        return {path: get_param(self.config, path) for path in grid}


def validation_log(log: InteractionLog, quantile: float) -> InteractionLog:
    """The events before the evaluation split: the data tuning may look at."""
    split = temporal_split(log.ts_ms, quantile)
    return log.subset(np.arange(int(np.searchsorted(log.ts_ms, split, side="left"))))


def tune(
    log: InteractionLog,
    items: Sequence[Item],
    offers_or_items: Iterable[Offer | Item] | None = None,
    base: EvaluationConfig | None = None,
    grid: Mapping[str, Sequence[Any]] = DEFAULT_GRID,
    rounds: int = 3,
    k: int = 10,
    min_gain: float = 0.001,
    on_trial: Callable[[str, Any, float], None] | None = None,
) -> TuningResult:
    """Coordinate ascent of ``engine_collab``'s HitRate@``k`` on the validation period.

    ``log``: the full log (only its events before the evaluation split are used). ``rounds``
    passes over ``grid`` at most (default 3; stops after a pass without change).
    ``min_gain``: least improvement of HitRate@``k`` that changes a value (default 0.001).
    ``on_trial`` is told each ``(path, value, score)``.
    """
    cfg = (base if base is not None else EvaluationConfig()).model_copy(
        update={"methods": (ENGINE_COLLAB,)}
    )
    inner = validation_log(log, cfg.split_quantile)
    inner_end = int(
        np.searchsorted(inner.ts_ms, temporal_split(inner.ts_ms, cfg.split_quantile), "left")
    )
    fit = inner.subset(np.arange(inner_end))
    tags = {i.item_id: i.tags for i in items}
    offers = list(offers_or_items) if offers_or_items is not None else None
    models: dict[str, CollabModel] = {}
    scores: dict[str, float] = {}

    def score(candidate: EvaluationConfig) -> float:
        key = candidate.model_dump_json()
        if key not in scores:
            learn = candidate.collab.model_dump_json(include=LEARNING_FIELDS)
            if learn not in models:
                while len(models) >= MODELS_KEPT:
                    del models[next(iter(models))]
                models[learn] = train_collab_model(fit, tags, candidate.seed, candidate.collab)
            quick = candidate.model_copy(  # the match is not tuned: not calibrated per trial
                update={
                    "match": candidate.match.model_copy(update={"enabled": False}),
                    "retrain_every_days": None,  # tuned on the frozen protocol
                }
            )
            report = evaluate(inner, items, offers, quick, model=models[learn])
            scores[key] = report.methods[ENGINE_COLLAB].hit_rate[k]
        return scores[key]

    result = TuningResult(cfg, score(cfg))
    for _ in range(rounds):
        improved = False
        for path, values in grid.items():
            for value in values:
                if value == get_param(result.config, path):
                    continue
                candidate = with_param(result.config, path, value)
                value_score = score(candidate)
                result.trials.append((path, value, value_score))
                if on_trial is not None:
                    on_trial(path, value, value_score)
                if value_score > result.score + min_gain:
                    result.config, result.score, improved = candidate, value_score, True
        if not improved:
            break
    return result
