"""The hybrid score of the collaborative model: the engine's score plus co-occurrence.

``score = w_affinity * cosine + w_value * value_norm + w_popularity * popularity
+ w_priority * priority_norm + w_cooccurrence * cooccurrence`` where ``cooccurrence`` is the
part of the user's recent items (:mod:`app.core.cooccurrence.index`, in [0, 1]). It is exactly
:func:`app.core.scoring.score_batch` with ``w_cooccurrence`` set and the sparse co-occurrence
part given, which is what the worker runs (:mod:`app.pipeline.ranking`);
:func:`hybrid_score_batch` is that call for a fixed :class:`CooccurrenceIndex`, and
:class:`HybridConfig` holds the weights tuned offline (``docs/learning.md``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from app.core.catalog import Catalogue
from app.core.cooccurrence.index import (
    CooccurrenceIndex,
    RecentItemsConfig,
    offer_alignment,
    recent_rows,
    sparse_offer_scores,
)
from app.core.cooccurrence.table import because_you_chose
from app.core.ranked import ScoredOffer
from app.core.scoring import COOCCURRENCE_PART, ScoringConfig, score_batch

__all__ = ["COOCCURRENCE_PART", "HybridConfig", "hybrid_score_batch", "top_k"]


class HybridConfig(BaseModel):
    """Weights of the hybrid score (defaults tuned on a validation period of ml-latest-small).

    ``scoring`` holds the engine's weights and list length (defaults: affinity 0.3, value 0.2,
    popularity 0.1, priority 0.05; see ``docs/learning.md``); its ``w_cooccurrence`` is
    replaced by this config's.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    scoring: ScoringConfig = ScoringConfig(w_affinity=0.3, w_popularity=0.1)
    w_cooccurrence: float = Field(default=0.3, ge=0.0)
    """Weight of the co-occurrence part (default 0.3)."""
    recent: RecentItemsConfig = RecentItemsConfig()

    def scoring_config(self) -> ScoringConfig:
        """The engine's scoring config with this config's co-occurrence weight."""
        return self.scoring.model_copy(update={"w_cooccurrence": self.w_cooccurrence})


def top_k(scores: npt.ArrayLike, k: int) -> npt.NDArray[np.intp]:
    """U x min(k, N) rows of a dense score matrix, best first, ties by row (the order of
    ``score_batch``). Rows whose score is ``-inf`` may appear at the end; callers drop them."""
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
    *,
    reasons: bool = True,
) -> list[Sequence[ScoredOffer]]:
    """Top-K offers per user with the co-occurrence part (see module docs).

    ``recent``: per user, recent item ids newest first (the ``seen`` zset). When the
    co-occurrence part dominates an offer's score, the reason names the recent item that
    contributed most: "Because you chose <title>".
    """
    users = np.asarray(user_vecs, dtype=np.float32)
    if users.ndim != 2 or len(recent) != users.shape[0]:
        raise ValueError(f"recent has {len(recent)} entries for user_vecs of shape {users.shape}")
    snap = catalogue.snapshot()
    rows = recent_rows(index, recent, cfg.recent)
    parts = sparse_offer_scores(index, rows, offer_alignment(index, snap), cfg.recent)
    because = [because_you_chose(index, r, cfg.recent, catalogue) for r in recent]
    return score_batch(
        users,
        now_ms,
        catalogue,
        cfg.scoring_config(),
        exclude,
        reasons=reasons,
        cooccurrence=parts,
        because=because,
    )
