"""Choosing the baselines' hyper-parameters on a validation period, never on the test period.

The events before the evaluation's split are split again at the same quantile: the item-item
matrices are fitted on the first part and every candidate is replayed over the second, in one
replay (each candidate is a method of its own). The candidate with the best HitRate@10 of each
baseline wins; the evaluation then refits it on all the training events.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from app.core.catalog import CatalogueSnapshot
from app.core.profile import DAY_MS
from app.evaluation.baselines import (
    FITS,
    RealTimeEase,
    RealTimeItemKnn,
    design,
    fit_cosine,
    fit_ease,
)
from app.evaluation.config import EASE, EASE_RECENCY, ITEM_KNN
from app.evaluation.metrics import RankingMetrics
from app.evaluation.replay import ItemOffers, Method, replay
from app.evaluation.split import temporal_split
from app.learning.interactions import InteractionLog

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
EASE_LAMBDAS: tuple[float, ...] = (20.0, 100.0, 300.0, 1000.0)
HALF_LIVES_MS: tuple[int, ...] = (
    MINUTE_MS, 10 * MINUTE_MS, HOUR_MS, DAY_MS, 7 * DAY_MS, 30 * DAY_MS, 365 * DAY_MS
)  # fmt: skip
STEP_DECAYS: tuple[float, ...] = (0.7, 0.8, 0.9, 0.95, 0.98)
KNN_RECENT: tuple[int, ...] = (1, 3, 5, 10, 20)
KNN_DECAY: tuple[float, ...] = (0.5, 0.8, 1.0)


@dataclass(frozen=True)
class BaselineParams:
    """The chosen hyper-parameters, and each winner's validation HitRate@10."""

    ease_lambda: float = 100.0
    ease_all_events: bool = False
    """The plain EASE's history holds every interaction (not only positives)."""
    ease_fit: str = "positives"
    """What the plain EASE's weights are learned from (one of :data:`~.baselines.FITS`)."""
    ease_recency_lambda: float = 100.0
    ease_recency_half_life_ms: int | None = 7 * DAY_MS
    ease_recency_step_decay: float | None = None
    ease_recency_all_events: bool = False
    """The recency variant's history holds every interaction (not only positives)."""
    ease_recency_fit: str = "positives"
    """What the recency variant's weights are learned from."""
    knn_n_recent: int = 5
    knn_decay: float = 0.8
    knn_fit: str = "positives"
    """What item kNN's cosine similarities are computed from."""
    validation_hit_rate: dict[str, float] = field(default_factory=dict)


def tune_baselines(
    log: InteractionLog,
    end: int,
    positive: npt.NDArray[np.bool_],
    offers: ItemOffers,
    snapshot: CatalogueSnapshot,
    split_quantile: float,
    k: int = 10,
) -> BaselineParams:
    """The best candidates of each baseline on the validation period inside rows ``[0, end)``
    of ``log`` (module doc)."""
    train = log.subset(np.arange(end))
    pos = positive[:end]
    val_split = temporal_split(train.ts_ms, split_quantile)
    val_end = int(np.searchsorted(train.ts_ms, val_split, side="left"))
    everything = np.ones_like(pos)
    # the item-item weights learned from the positives, from every interaction (implicit
    # feedback: a low rating still says the person chose the film) or from the stars
    xs = {fit: design(train, val_end, pos, fit) for fit in FITS}
    candidates: dict[str, tuple[str, str, dict[str, float]]] = {}
    methods: list[Method] = []

    def add(family: str, fit: str, params: dict[str, float], method: Method) -> None:
        candidates[method.name] = (family, fit, params)
        methods.append(method)

    def metrics() -> RankingMetrics:
        return RankingMetrics(k, snapshot.size)

    for fit, x in xs.items():
        for lam in EASE_LAMBDAS:
            matrix = fit_ease(x, lam)
            for every, history in ((0.0, pos), (1.0, everything)):
                tag = f"{lam},{every},{fit}"
                add(EASE, fit, {"lam": lam, "all_events": every},
                    RealTimeEase(metrics(), snapshot, offers, matrix, history, None,
                                 f"ease[{tag}]"))  # fmt: skip
                for half in HALF_LIVES_MS:
                    add(EASE_RECENCY, fit, {"lam": lam, "half_life_ms": half,
                                            "all_events": every},
                        RealTimeEase(metrics(), snapshot, offers, matrix, history, float(half),
                                     f"ease_recency[{tag},{half}]"))  # fmt: skip
                for step in STEP_DECAYS:
                    add(EASE_RECENCY, fit, {"lam": lam, "step_decay": step,
                                            "all_events": every},
                        RealTimeEase(metrics(), snapshot, offers, matrix, history, None,
                                     f"ease_recency[{tag},step {step}]", step))  # fmt: skip
        cosine = fit_cosine(x)
        for n in KNN_RECENT:
            for decay in KNN_DECAY:
                add(ITEM_KNN, fit, {"n_recent": n, "decay": decay},
                    RealTimeItemKnn(metrics(), snapshot, offers, cosine, n, decay,
                                    f"item_knn[{n},{decay},{fit}]"))  # fmt: skip
    replay(train, val_split, pos, offers, methods, max(KNN_RECENT))
    best: dict[str, tuple[float, str, dict[str, float]]] = {}
    for method in methods:
        family, fit, params = candidates[method.name]
        score = method.metrics.result().hit_rate[k]
        if family not in best or score > best[family][0]:
            best[family] = (score, fit, params)
    ease, recency, knn = best[EASE][2], best[EASE_RECENCY][2], best[ITEM_KNN][2]
    return BaselineParams(
        ease_lambda=ease["lam"],
        ease_all_events=bool(ease["all_events"]),
        ease_fit=best[EASE][1],
        ease_recency_lambda=recency["lam"],
        ease_recency_half_life_ms=_int_or_none(recency.get("half_life_ms")),
        ease_recency_step_decay=recency.get("step_decay"),
        ease_recency_all_events=bool(recency["all_events"]),
        ease_recency_fit=best[EASE_RECENCY][1],
        knn_n_recent=int(knn["n_recent"]),
        knn_decay=knn["decay"],
        knn_fit=best[ITEM_KNN][1],
        validation_hit_rate={family: round(score, 6) for family, (score, _, _) in best.items()},
    )


def _int_or_none(value: float | None) -> int | None:
    return None if value is None else int(value)
