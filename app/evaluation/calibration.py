"""The calibrated match, measured: labels, reliability, expected calibration error, thresholds.

``engine_collab``'s top ``depth`` offers of every query are kept with their calibrated
scores (:class:`TopLists`). An offer's **outcome** (:func:`next_positive_outcomes`) is 1 when
its item is among the user's next ``horizon`` positive events from the query's time on (the
query's own target included; fewer when the log ends first): what ``match`` predicts. The
calibration (:mod:`app.core.calibration`) is fitted on the validation period's lists and
judged on the test period's:

* **reliability** (:func:`reliability`): the offers sorted by predicted probability and cut
  into ten bins of equal size (deciles of the prediction); per bin the mean prediction, the
  observed share of outcomes and the count;
* **expected calibration error** (:func:`expected_calibration_error`): the mean over bins of
  ``|mean prediction - observed share|``, weighted by bin size;
* **thresholds** (:func:`threshold_table`): per ``min_match`` ``t``, a decision sends the
  first ``message_k`` offers of its list whose match is at least ``t`` (the list is sorted by
  score and the map is monotone, so that is its top ``message_k`` less the weak ones); a
  decision left with none is held back. Reported: the share of decisions and of offers held
  back, and of what is still sent the hit rate (a sent offer holds the query's item: HitRate
  as in the main table) and the precision (share of sent offers whose outcome happened).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from app.core.calibration import Calibration
from app.evaluation.replay import ItemOffers, Query
from app.learning.interactions import InteractionLog

F64 = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Rows = npt.NDArray[np.intp]


@dataclass
class TopLists:
    """The top ``depth`` offers of each query of one method, best first, with their
    calibrated scores (:func:`app.core.calibration.calibrated_score`) and whether each holds
    the query's item."""

    depth: int
    queries: list[Query] = field(default_factory=list)
    rows: list[Rows] = field(default_factory=list)
    scores: list[F64] = field(default_factory=list)

    def add(self, query: Query, rows: Sequence[int], scores: Sequence[float]) -> None:
        """One query's list (only its first ``depth`` entries are kept)."""
        self.queries.append(query)
        self.rows.append(np.asarray(rows[: self.depth], dtype=np.intp))
        self.scores.append(np.asarray(scores[: self.depth], dtype=np.float64))

    def __len__(self) -> int:
        return len(self.queries)

    def hits(self) -> list[Bools]:
        """Per query, per listed offer: does it hold the query's item?"""
        return [np.isin(r, q.targets) for q, r in zip(self.queries, self.rows, strict=True)]

    def flat_scores(self) -> F64:
        """Every listed offer's calibrated score, query after query."""
        return np.concatenate(self.scores) if self.scores else np.empty(0)


def next_positive_outcomes(
    lists: TopLists,
    log: InteractionLog,
    positive: Bools,
    offers: ItemOffers,
    horizon: int,
) -> list[Bools]:
    """Per query, per listed offer: is its item among the user's next ``horizon`` positive
    events at or after the query's time (module doc)?"""
    rows = np.flatnonzero(positive)
    users = log.user[rows]
    order = np.argsort(users, kind="stable")  # per user, positive rows in time order
    bounds = np.searchsorted(users[order], np.arange(log.n_users + 1), side="left")
    out: list[Bools] = []
    for query, listed in zip(lists.queries, lists.rows, strict=True):
        mine = rows[order[bounds[query.user] : bounds[query.user + 1]]]
        start = int(np.searchsorted(log.ts_ms[mine], query.ts_ms, side="left"))
        upcoming = offers.of_many(log.item[mine[start : start + horizon]])
        out.append(np.isin(listed, upcoming))
    return out


@dataclass(frozen=True)
class ReliabilityBin:
    """One bin of the reliability table: ``n`` offers, their ``predicted`` mean probability
    (from ``low`` to ``high``) and the ``observed`` share whose outcome happened."""

    n: int
    predicted: float
    observed: float
    low: float
    high: float


def reliability(
    predicted: npt.ArrayLike, outcomes: npt.ArrayLike, bins: int = 10
) -> list[ReliabilityBin]:
    """The reliability table: offers sorted by prediction (stable), cut into ``bins`` bins
    of equal size (the first ones one larger when it does not divide); empty bins dropped."""
    p = np.asarray(predicted, dtype=np.float64).ravel()
    y = np.asarray(outcomes, dtype=np.float64).ravel()
    if p.shape != y.shape:
        raise ValueError(f"{p.size} predictions for {y.size} outcomes")
    order = np.argsort(p, kind="stable")
    out = []
    for part in np.array_split(order, bins):
        if part.size:
            out.append(
                ReliabilityBin(
                    n=int(part.size),
                    predicted=float(p[part].mean()),
                    observed=float(y[part].mean()),
                    low=float(p[part].min()),
                    high=float(p[part].max()),
                )
            )
    return out


def expected_calibration_error(table: Sequence[ReliabilityBin]) -> float:
    """``sum_b n_b / N * |predicted_b - observed_b|`` over the bins (0 for no offers)."""
    total = sum(b.n for b in table)
    if total == 0:
        return 0.0
    return float(sum(b.n * abs(b.predicted - b.observed) for b in table) / total)


@dataclass(frozen=True)
class ThresholdRow:
    """What one ``min_match`` (percent) does to the decisions (module doc)."""

    min_match: float
    decisions: int
    held_back: float
    """Share of decisions left with no offer to send."""
    offers_held_back: float
    """Share of the offers the decisions would have sent that are held back."""
    hit_rate: float
    """Of the decisions still sent: share whose sent offers hold the query's item."""
    precision: float
    """Of the offers still sent: share whose outcome happened."""
    mean_match: float
    """Of the offers still sent: their mean match, percent (what was promised)."""


def threshold_table(
    matches: Sequence[Sequence[float]],
    hits: Sequence[Bools],
    outcomes: Sequence[Bools],
    message_k: int,
    thresholds: Sequence[float],
) -> list[ThresholdRow]:
    """Per threshold, the decisions' fate (module doc). ``matches``, ``hits``, ``outcomes``:
    per decision, per listed offer, best first."""
    m = [np.asarray(x[:message_k], dtype=np.float64) for x in matches]
    h = [np.asarray(x[:message_k], dtype=np.bool_) for x in hits]
    o = [np.asarray(x[:message_k], dtype=np.bool_) for x in outcomes]
    n = len(m)
    listed = sum(x.size for x in m)
    out = []
    for t in thresholds:
        sent = [x >= t for x in m]
        n_sent = sum(int(s.any()) for s in sent)
        offers = sum(int(s.sum()) for s in sent)
        hit = sum(int((hx & s).any()) for hx, s in zip(h, sent, strict=True))
        good = sum(int((ox & s).sum()) for ox, s in zip(o, sent, strict=True))
        promised = sum(float(x[s].sum()) for x, s in zip(m, sent, strict=True))
        out.append(
            ThresholdRow(
                min_match=float(t),
                decisions=n,
                held_back=(n - n_sent) / n if n else 0.0,
                offers_held_back=(listed - offers) / listed if listed else 0.0,
                hit_rate=hit / n_sent if n_sent else 0.0,
                precision=good / offers if offers else 0.0,
                mean_match=promised / offers if offers else 0.0,
            )
        )
    return out


@dataclass(frozen=True)
class MatchReport:
    """The calibrated match of ``engine_collab``: the calibration fitted on the validation
    period, and how it does on the test period (module doc)."""

    calibration: Calibration
    offers: int
    """Test offers judged (queries x listed offers)."""
    positives: int
    """Of those, the ones whose outcome happened."""
    reliability: list[ReliabilityBin]
    ece: float
    validation_ece: float
    """The same error on the validation period the calibration was fitted on (in sample)."""
    thresholds: list[ThresholdRow]
    message_k: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the calibration file's content included."""
        fitted = self.calibration.fitted_on
        return {
            "target": self.calibration.target,
            "horizon": fitted.horizon,
            "depth": fitted.depth,
            "message_k": self.message_k,
            "fitted_on": fitted.model_dump(),
            "test_offers": self.offers,
            "test_positives": self.positives,
            "ece": round(self.ece, 6),
            "validation_ece": round(self.validation_ece, 6),
            "reliability": [
                {
                    "n": b.n,
                    "predicted": round(b.predicted, 6),
                    "observed": round(b.observed, 6),
                    "low": round(b.low, 6),
                    "high": round(b.high, 6),
                }
                for b in self.reliability
            ],
            "thresholds": [
                {
                    "min_match": r.min_match,
                    "decisions": r.decisions,
                    "held_back": round(r.held_back, 6),
                    "offers_held_back": round(r.offers_held_back, 6),
                    "hit_rate": round(r.hit_rate, 6),
                    "precision": round(r.precision, 6),
                    "mean_match": round(r.mean_match, 4),
                }
                for r in self.thresholds
            ],
            "calibration_points": len(self.calibration.points),
        }

    def table(self) -> str:
        """The reliability table and the threshold table, as text."""
        fitted = self.calibration.fitted_on
        lines = [
            f"match of engine_collab: P(item among the user's next {fitted.horizon} positive "
            f"events), isotonic, fitted on the validation period ({fitted.offers} offers, "
            f"top {fitted.depth} of each query; {len(self.calibration.points)} points)",
            f"reliability on the test period ({self.offers} offers, {self.positives} "
            f"positive; deciles of the prediction):",
            "  decile         n  predicted  observed  range",
        ]
        for i, b in enumerate(self.reliability, start=1):
            lines.append(
                f"  {i:>6}  {b.n:>8}  {b.predicted:>9.4f}  {b.observed:>8.4f}  "
                f"{b.low:.4f}-{b.high:.4f}"
            )
        lines.append(
            f"  expected calibration error: {self.ece:.4f} (validation, in sample: "
            f"{self.validation_ece:.4f})"
        )
        lines.append(
            f"min_match on messages of {self.message_k} offers (test period, "
            f"{self.thresholds[0].decisions if self.thresholds else 0} decisions):"
        )
        lines.append("  min_match  held back  offers held back  hit rate sent  precision  match")
        for r in self.thresholds:
            lines.append(
                f"  {r.min_match:>8g}%  {r.held_back:>9.3f}  {r.offers_held_back:>16.3f}  "
                f"{r.hit_rate:>13.4f}  {r.precision:>9.4f}  {r.mean_match:>5.1f}"
            )
        return "\n".join(lines)
