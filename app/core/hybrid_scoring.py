"""Scoring with an extra per-user part: the engine's score plus co-occurrence of recent items.

``score = w_affinity * cosine + w_value * value_norm + w_popularity * popularity
+ w_priority * priority_norm + w_cooccurrence * cooccurrence`` where the first four parts are
exactly those of :func:`app.core.scoring.score_batch` and ``cooccurrence`` is
:func:`app.core.cooccurrence.cooccurrence_scores` of the user's recent items (in [0, 1]).

:func:`score_matrix` reproduces ``score_batch``'s arithmetic as a dense U x N matrix (a test
checks that both rank identically) so that an extra part can be added before the top-K; once
``score_batch`` accepts such a part itself, :func:`hybrid_score_batch` reduces to a call of it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from app.core.catalog import Catalogue, CatalogueSnapshot
from app.core.cooccurrence import (
    CooccurrenceIndex,
    RecentItemsConfig,
    cooccurrence_scores,
    strongest_source,
)
from app.core.scoring import ScoredOffer, ScoringConfig, with_reasons

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
COOCCURRENCE_PART = "cooccurrence"
"""Name of the extra score part in :attr:`ScoredOffer.parts`."""


class HybridConfig(BaseModel):
    """Weights of the hybrid score (defaults tuned on a validation period of ml-latest-small).

    ``scoring`` holds the engine's weights and list length (defaults: affinity 0.3, value 0.2,
    popularity 0.1, priority 0.05; see ``docs/learning.md``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    scoring: ScoringConfig = ScoringConfig(w_affinity=0.3, w_popularity=0.1)
    w_cooccurrence: float = Field(default=0.3, ge=0.0)
    """Weight of the co-occurrence part (default 0.3)."""
    recent: RecentItemsConfig = RecentItemsConfig()


def unit_rows(users: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Rows L2-normalised as ``score_batch`` does (non-finite or zero rows become zero)."""
    arr = np.asarray(users, dtype=np.float32)
    finite = np.all(np.isfinite(arr), axis=1, keepdims=True)
    clean = np.where(finite, arr, 0.0).astype(np.float64)
    norms = np.linalg.norm(clean, axis=1, keepdims=True)
    out: F64 = np.zeros_like(clean)
    np.divide(clean, norms, out=out, where=norms > 0)
    return out.astype(np.float32)


def _static(snapshot: CatalogueSnapshot, cfg: ScoringConfig, now_ms: int) -> F64:
    """The user-independent parts summed per offer (N), ``-inf`` where ineligible."""
    value_part = cfg.w_value * snapshot.value_norm
    pop_part = cfg.w_popularity * snapshot.popularity
    prio_part = cfg.w_priority * snapshot.priority_norm
    return np.where(snapshot.eligible_at(now_ms), value_part + pop_part + prio_part, -np.inf)


def _ranking_scores(
    unit_users: F32,
    static: F64,
    snapshot: CatalogueSnapshot,
    cfg: ScoringConfig,
    exclude: Sequence[Collection[str]] | None,
    extra: npt.ArrayLike | None,
) -> F32:
    """U x N float32 ranking scores, computed as ``score_batch`` computes them, plus ``extra``."""
    scores = (unit_users @ snapshot.matrix.T) * np.float32(cfg.w_affinity)
    scores += static.astype(np.float32)
    if extra is not None:
        scores += np.asarray(extra, dtype=np.float32)
    if exclude is not None:
        if len(exclude) != scores.shape[0]:
            raise ValueError(f"exclude has {len(exclude)} entries for {scores.shape[0]} users")
        for u, items in enumerate(exclude):
            if items:
                scores[u, snapshot.offers_with_items(items)] = -np.inf
    return np.asarray(scores, dtype=np.float32)


def score_matrix(
    user_vecs: npt.ArrayLike,
    now_ms: int,
    snapshot: CatalogueSnapshot,
    cfg: ScoringConfig,
    exclude: Sequence[Collection[str]] | None = None,
    extra: npt.ArrayLike | None = None,
) -> F32:
    """U x N ranking scores (float32) as :func:`~app.core.scoring.score_batch` computes them,
    plus ``extra``: an already weighted U x N part (or ``None``). Ineligible offers and
    offers containing an excluded item are ``-inf``."""
    users = np.asarray(user_vecs, dtype=np.float32)
    if users.ndim != 2 or users.shape[1] != snapshot.dim:
        raise ValueError(f"user_vecs must be U x {snapshot.dim}, got shape {users.shape}")
    static = _static(snapshot, cfg, now_ms)
    return _ranking_scores(unit_rows(users), static, snapshot, cfg, exclude, extra)


def top_k(scores: npt.ArrayLike, k: int) -> npt.NDArray[np.intp]:
    """U x min(k, N) offer rows, best first, ties by row (the order of ``score_batch``).

    Rows whose score is ``-inf`` may appear at the end; callers drop them.
    """
    arr = np.asarray(scores)
    k = min(k, arr.shape[1])
    if k == 0:
        return np.zeros((arr.shape[0], 0), dtype=np.intp)
    top = np.argpartition(-arr, k - 1, axis=1)[:, :k]
    top_scores = np.take_along_axis(arr, top, axis=1)
    order = np.lexsort((top, -top_scores), axis=1)
    return np.asarray(np.take_along_axis(top, order, axis=1), dtype=np.intp)


def hybrid_score_batch(
    user_vecs: npt.ArrayLike,
    recent: Sequence[Sequence[str]],
    now_ms: int,
    catalogue: Catalogue,
    index: CooccurrenceIndex,
    cfg: HybridConfig,
    exclude: Sequence[Collection[str]] | None = None,
) -> list[list[ScoredOffer]]:
    """Top-K offers per user with the co-occurrence part (see module docs).

    ``recent``: per user, recent item ids newest first (the ``seen`` zset). When the
    co-occurrence part dominates an offer's score, the reason names the recent item that
    contributed most: "Because you chose <title>".
    """
    snap = catalogue.snapshot()
    users = np.asarray(user_vecs, dtype=np.float32)
    if len(recent) != users.shape[0]:
        raise ValueError(f"recent has {len(recent)} entries for {users.shape[0]} users")
    if users.shape[0] == 0 or snap.size == 0:
        return [[] for _ in range(users.shape[0])]
    s = cfg.scoring
    cooc = cfg.w_cooccurrence * cooccurrence_scores(index, recent, snap, cfg.recent)
    unit_users = unit_rows(users)
    static = _static(snap, s, now_ms)
    scores = _ranking_scores(unit_users, static, snap, s, exclude, cooc)
    results: list[list[ScoredOffer]] = []
    for u, rows in enumerate(top_k(scores, s.k)):
        ranked: list[ScoredOffer] = []
        for i in rows:
            if scores[u, i] == -np.inf:
                continue
            offer = snap.offers[i]
            affinity = float(unit_users[u].astype(np.float64) @ snap.matrix[i].astype(np.float64))
            parts = {
                "affinity": s.w_affinity * affinity,
                "value": float(s.w_value * snap.value_norm[i]),
                "popularity": float(s.w_popularity * snap.popularity[i]),
                "priority": float(s.w_priority * snap.priority_norm[i]),
                COOCCURRENCE_PART: float(cooc[u, i]),
            }
            reason = _reason(parts, offer.item_ids, recent[u], index, cfg.recent, catalogue)
            if reason is None:
                base = {k: v for k, v in parts.items() if k != COOCCURRENCE_PART}
                reason = with_reasons(unit_users[u], [ScoredOffer(offer, 0.0, base, "")], snap, s)[
                    0
                ].reason
            ranked.append(ScoredOffer(offer, sum(parts.values()), parts, reason))
        results.append(ranked)
    return results


def _reason(
    parts: dict[str, float],
    item_ids: Sequence[str],
    recent: Sequence[str],
    index: CooccurrenceIndex,
    recent_cfg: RecentItemsConfig,
    catalogue: Catalogue,
) -> str | None:
    """ "Because you chose <title>" when co-occurrence is the largest positive part."""
    positive = {k: v for k, v in parts.items() if v > 0}
    if not positive or max(sorted(positive), key=lambda k: positive[k]) != COOCCURRENCE_PART:
        return None
    for item_id in item_ids:
        source = strongest_source(index, recent, item_id, recent_cfg)
        if source is not None:
            item = catalogue.item(source)
            title = item.title if item is not None and item.title else source
            return f"Because you chose {title}"
    return None
