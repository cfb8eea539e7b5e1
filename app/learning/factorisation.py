"""Implicit-feedback matrix factorisation: collaborative item vectors from an interaction log.

Method (deterministic for a seed):

1. **Confidence.** Each event gives ``c = floor + max(w, 0)`` where ``w`` is the engine's event
   weight (:class:`~app.core.weights.EventWeights`: view 1, click 2, cart 3, purchase 5, like 4,
   rating ``(r - 3) * 2``; dislikes and low ratings add nothing beyond ``floor``). Confidences of
   the same (user, item) pair are summed into a sparse user x item matrix ``X``.
2. **BM25 weighting** of ``X`` (users are "documents", items are "terms"): saturates heavy users'
   counts (``k1``) and normalises by user activity (``b``), and down-weights items many users
   have (``idf = log(1 + (n_users - n_i + 0.5) / (n_i + 0.5))``, Lucene's, always positive).
3. **Truncated SVD** ``X ~ U S V^T`` of rank ``dim`` with ``scipy.sparse.linalg.svds`` started
   from a fixed vector drawn from ``seed``; each singular vector's sign is fixed so that its
   largest-magnitude entry is positive.
4. **Item vectors** are the rows of ``V S^p`` (``p = singular_power``), L2-normalised; user
   factors are ``U S^(1-p)`` so that ``user . item`` reconstructs ``X`` (the frozen
   "nightly retrain" model of the evaluation uses them).

Items whose row of ``X`` is empty (no positive confidence) get no vector: the catalogue then
falls back to their tag hash.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field
from scipy.sparse.linalg import svds  # type: ignore[import-untyped]

from app.core.events import UserEvent
from app.core.vectors import DEFAULT_DIM
from app.learning.interactions import InteractionLog

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


class FactorisationConfig(BaseModel):
    """Parameters of :func:`factorise` (defaults tuned on a validation period of
    ml-latest-small, see ``docs/learning.md``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    confidence_floor: float = Field(default=0.0, ge=0.0)
    """Confidence every interaction carries on top of ``max(weight, 0)`` (default 0: only
    positive signals count)."""
    bm25_k1: float = Field(default=1.2, ge=0.0)
    """BM25 saturation of a user's confidence in one item (default 1.2)."""
    bm25_b: float = Field(default=0.75, ge=0.0, le=1.0)
    """BM25 user-length normalisation, 0 = none, 1 = full (default 0.75)."""
    singular_power: float = Field(default=0.5, ge=0.0, le=1.0)
    """Item vectors are ``V S^p`` (default p = 0.5)."""


@dataclass(frozen=True, eq=False)
class Factorisation:
    """The result of :func:`factorise`.

    ``item_vectors`` (n_items x dim, float32): unit rows, zero rows for items without a
    vector (``has_vector`` false). ``user_factors`` (n_users x dim, float64): ``U S^(1-p)``
    rows aligned with ``user_ids``; ``item_factors``: the raw ``V S^p`` rows, so
    ``user_factors @ item_factors.T`` approximates the weighted matrix.
    ``singular_values``: descending.
    """

    user_ids: tuple[str, ...]
    item_ids: tuple[str, ...]
    item_vectors: F32
    item_factors: F64
    user_factors: F64
    singular_values: F64
    has_vector: npt.NDArray[np.bool_]

    @property
    def dim(self) -> int:
        """Vector dimension D."""
        return int(self.item_vectors.shape[1])

    def vectors(self) -> dict[str, F32]:
        """Item id -> unit vector, only for items that have one."""
        return {
            self.item_ids[i]: self.item_vectors[i].copy() for i in np.flatnonzero(self.has_vector)
        }


def confidence_matrix(log: InteractionLog, cfg: FactorisationConfig) -> sp.csr_matrix:
    """The summed confidences as a users x items CSR matrix (float64), see module docs."""
    conf = cfg.confidence_floor + np.maximum(log.weight, 0.0)
    matrix = sp.csr_matrix(
        (conf, (log.user, log.item)), shape=(log.n_users, log.n_items), dtype=np.float64
    )
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    return matrix


def bm25_weight(matrix: sp.csr_matrix, k1: float, b: float) -> sp.csr_matrix:
    """BM25-weighted copy of a users x items matrix (see module docs)."""
    coo = matrix.tocoo()
    n_users = matrix.shape[0]
    df = np.bincount(coo.col, minlength=matrix.shape[1])
    idf = np.log1p((n_users - df + 0.5) / (df + 0.5))
    length = np.asarray(matrix.sum(axis=1)).ravel()
    mean_length = float(length.mean()) if length.size and length.mean() > 0 else 1.0
    norm = k1 * (1.0 - b + b * length[coo.row] / mean_length)
    data = coo.data * (k1 + 1.0) / (norm + coo.data) * idf[coo.col]
    out = sp.csr_matrix((data, (coo.row, coo.col)), shape=matrix.shape)
    out.eliminate_zeros()
    return out


def _truncated_svd(matrix: sp.csr_matrix, rank: int, seed: int) -> tuple[F64, F64, F64]:
    """``U, s, Vt`` of the top ``rank`` singular triplets, descending, signs fixed."""
    rng = np.random.default_rng(seed)
    v0 = rng.standard_normal(min(matrix.shape))
    u, s, vt = svds(matrix, k=rank, v0=v0, random_state=seed)
    order = np.argsort(-s, kind="stable")
    u, s, vt = np.asarray(u)[:, order], np.asarray(s)[order], np.asarray(vt)[order]
    signs = np.sign(vt[np.arange(rank), np.argmax(np.abs(vt), axis=1)])
    signs[signs == 0] = 1.0
    return u * signs, s, vt * signs[:, None]


def factorise(
    interactions: InteractionLog | Iterable[UserEvent],
    dim: int = DEFAULT_DIM,
    seed: int = 0,
    cfg: FactorisationConfig | None = None,
) -> Factorisation:
    """Factorise an interaction log (see module docs); deterministic for ``seed``.

    ``dim`` is D (default 64). When the matrix is too small for rank ``dim`` (svds needs
    ``rank < min(n_users, n_items)``), the missing dimensions are zero.
    """
    cfg = cfg if cfg is not None else FactorisationConfig()
    log = interactions if isinstance(interactions, InteractionLog) else _log(interactions)
    n_users, n_items = log.n_users, log.n_items
    weighted = bm25_weight(confidence_matrix(log, cfg), cfg.bm25_k1, cfg.bm25_b)
    rank = min(dim, min(n_users, n_items) - 1)
    u = np.zeros((n_users, dim))
    s = np.zeros(dim)
    vt = np.zeros((dim, n_items))
    if rank >= 1 and weighted.nnz > 0:
        u[:, :rank], s[:rank], vt[:rank] = _truncated_svd(weighted, rank, seed)
    s_pos = np.maximum(s, 0.0)
    item_factors = vt.T * s_pos**cfg.singular_power
    user_factors = u * s_pos ** (1.0 - cfg.singular_power)
    norms = np.linalg.norm(item_factors, axis=1)
    occurs = np.asarray(weighted.getnnz(axis=0)).ravel() > 0
    has_vector = occurs & (norms > 1e-12)
    vectors = np.zeros((n_items, dim), dtype=np.float32)
    vectors[has_vector] = (item_factors[has_vector] / norms[has_vector, None]).astype(np.float32)
    return Factorisation(
        user_ids=log.user_ids,
        item_ids=log.item_ids,
        item_vectors=vectors,
        item_factors=item_factors,
        user_factors=user_factors,
        singular_values=s,
        has_vector=has_vector,
    )


def learn_item_vectors(
    interactions: InteractionLog | Iterable[UserEvent],
    dim: int = DEFAULT_DIM,
    seed: int = 0,
    cfg: FactorisationConfig | None = None,
) -> dict[str, F32]:
    """Collaborative item vectors: item id -> unit float32 vector of length ``dim``.

    Items without a learned vector (no positive interaction) are absent: give them no
    ``vector`` and the catalogue uses their tag hash. See :func:`factorise`.
    """
    return factorise(interactions, dim, seed, cfg).vectors()


def _log(events: Iterable[UserEvent]) -> InteractionLog:
    return InteractionLog.from_events(events)
