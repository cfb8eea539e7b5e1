"""Batch scoring of offers for many users with one matrix product, then top-K per user.

``score = w_affinity * cosine(user, offer) + w_value * value_norm + w_popularity * popularity
+ w_priority * priority_norm`` (see :class:`~app.core.catalog.CatalogueSnapshot` for the
normalisations). Ineligible offers (outside ``[valid_from, valid_until)`` at ``now_ms``, no
allowed channel, or containing an item the user purchased) are never returned. A user with a
zero (or non-finite) vector has affinity 0 everywhere: a value/popularity/priority ranking.
An optional, already weighted per-offer part ``exploration`` (:mod:`app.core.exploration`)
is added to every user's score, and an optional per-user part ``cooccurrence`` (sparse: the
offers each user's recent items point to, :mod:`app.core.cooccurrence.index`), weighted by
``w_cooccurrence``, to that user's score; both before the top K. Likewise an optional per-user
part ``restock`` (the offers of the repeatable items each user is due to buy again,
:mod:`app.core.restock`), weighted by ``w_restock``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from app.core import defaults
from app.core.catalog import Catalogue, CatalogueSnapshot
from app.core.cooccurrence.index import SparseRow
from app.core.ranked import RankedOffers, ScoredOffer
from app.core.reasons import Because, build_reason, tags_by_interest
from app.core.restock import RESTOCK_PART

F64 = npt.NDArray[np.float64]
MAX_SCORE_CELLS = 4_000_000
"""Most user x offer scores held at once (16 MB of float32): larger batches are scored in
blocks of users, so memory stays flat as the catalogue grows."""

PARTS = ("affinity", "value", "popularity", "priority", "exploration")
"""Names of the score parts every scored offer reports, in this order."""
COOCCURRENCE_PART = "cooccurrence"
"""Name of the part reported after :data:`PARTS` when co-occurrence is on (a per-user
``cooccurrence`` argument and ``w_cooccurrence > 0``), 0.0 for offers it does not reach."""


class ScoringConfig(BaseModel):
    """Weights of the score parts and the list length."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    w_affinity: float = defaults.W_AFFINITY
    """Weight of the cosine between user and offer vectors (default 0.7)."""
    w_value: float = defaults.W_VALUE
    """Weight of the offer value normalised by the catalogue's largest (default 0.2)."""
    w_popularity: float = defaults.W_POPULARITY
    """Weight of the popularity prior (default 0.1)."""
    w_priority: float = defaults.W_PRIORITY
    """Weight of the priority normalised by the catalogue's largest |priority| (0.05)."""
    w_cooccurrence: float = Field(default=defaults.W_COOCCURRENCE, ge=0.0)
    """Weight of the co-occurrence part of the user's recent items, in [0, 1] before
    weighting (default 0.3, tuned on MovieLens, see ``docs/learning.md``; 0: off). It counts
    only for a call given the per-user part."""
    w_restock: float = Field(default=defaults.W_RESTOCK, ge=0.0)
    """Weight of the restock part, in [min(1, due fraction), 1] before weighting, of the
    offers of a repeatable item the user is due to buy again (default 1.0; 0: a due item is
    eligible again but not lifted). It counts only for a call given the per-user part."""
    k: int = Field(default=defaults.TOP_K, ge=1, le=1000)
    """Offers returned per user (default 5)."""
    reason_tags: int = Field(default=defaults.REASON_TAGS, ge=1)
    """Tags named in an affinity reason (default 2)."""

    @classmethod
    def weight_names(cls) -> list[str]:
        """The weights of the score parts (``w_<part>``), each also a setting of that name."""
        return [name for name in cls.model_fields if name.startswith("w_")]


def unit_rows(users: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Each row as a unit vector (float32); zero or non-finite rows become zeros."""
    finite = np.all(np.isfinite(users), axis=1, keepdims=True)
    clean = np.where(finite, users, 0.0).astype(np.float64)
    norms = np.linalg.norm(clean, axis=1, keepdims=True)
    out: npt.NDArray[np.float64] = np.zeros_like(clean)
    np.divide(clean, norms, out=out, where=norms > 0)
    return out.astype(np.float32)


def score_batch(
    user_vecs: npt.ArrayLike,
    now_ms: int,
    catalogue: Catalogue,
    cfg: ScoringConfig,
    exclude: Sequence[Collection[str]] | None = None,
    *,
    reasons: bool = True,
    exploration: npt.NDArray[np.float64] | None = None,
    cooccurrence: Sequence[SparseRow] | None = None,
    because: Sequence[Because | None] | None = None,
    restock: Sequence[SparseRow] | None = None,
) -> list[Sequence[ScoredOffer]]:
    """Top-K eligible offers for each of U users, best first.

    ``user_vecs``: U x D. ``exclude``: per user, purchased item ids (offers containing one
    are ineligible). Ties are broken by offer id order among the K returned (of several offers
    tied at the K-th place, which ones are returned is deterministic but not by id). Users
    may get fewer than K offers.
    ``reasons=False`` leaves every ``reason`` empty (fill them later with :func:`with_reasons`).
    ``exploration``: N finite floats aligned to ``catalogue.snapshot().offer_ids``, added to
    every user's score of each offer and reported as the part ``"exploration"`` (0.0 when
    ``None``, the default).
    ``cooccurrence``: per user, ``(offer rows, values)`` of the snapshot (rows distinct within
    a user; values finite, in [0, 1] from :func:`~app.core.cooccurrence.index.sparse_offer_scores`;
    every other offer 0); ``w_cooccurrence x value`` is added to that user's score of those
    offers and reported as the part ``"cooccurrence"`` (absent when ``None`` or the weight is
    0, so the parts stay those of :data:`PARTS`).
    ``because``: per user, what names the source of a co-occurrence reason (see
    :func:`with_reasons`; only with ``reasons``).
    ``restock``: per user, ``(offer rows, values)`` as ``cooccurrence`` (from
    :func:`~app.core.restock.restock_rows`); ``w_restock x value`` is added and reported as the
    part ``"restock"`` (after ``"cooccurrence"``; absent when ``None``). It lifts offers only:
    a due item must also be left out of ``exclude`` to be eligible.
    """
    users = np.asarray(user_vecs, dtype=np.float32)
    if users.ndim != 2 or users.shape[1] != catalogue.dim:
        raise ValueError(f"user_vecs must be U x {catalogue.dim}, got shape {users.shape}")
    n_users = users.shape[0]
    for name, per_user in (
        ("exclude", exclude),
        ("cooccurrence", cooccurrence),
        ("because", because),
        ("restock", restock),
    ):
        if per_user is not None and len(per_user) != n_users:
            raise ValueError(f"{name} has {len(per_user)} entries for {n_users} users")
    snap = catalogue.snapshot()
    explore = np.zeros(snap.size) if exploration is None else np.asarray(exploration, np.float64)
    if explore.shape != (snap.size,) or not np.all(np.isfinite(explore)):
        raise ValueError(f"exploration must be {snap.size} finite floats, got {explore.shape}")
    if cfg.w_cooccurrence == 0:
        cooccurrence = None
    if n_users == 0 or snap.size == 0:
        return [[] for _ in range(n_users)]
    rows = max(1, MAX_SCORE_CELLS // snap.size)
    if n_users > rows:  # bound the U x N score matrix: score the users in blocks
        blocks: list[Sequence[ScoredOffer]] = []
        for start in range(0, n_users, rows):
            end = start + rows
            blocks += score_batch(
                users[start:end],
                now_ms,
                catalogue,
                cfg,
                None if exclude is None else exclude[start:end],
                reasons=reasons,
                exploration=explore,
                cooccurrence=None if cooccurrence is None else cooccurrence[start:end],
                because=None if because is None else because[start:end],
                restock=None if restock is None else restock[start:end],
            )
        return blocks

    unit_users = unit_rows(users)
    static = static_parts(snap, cfg, now_ms, explore)
    # the one matrix product, then one U x N addition (float32 throughout)
    scores = (unit_users @ snap.matrix.T) * np.float32(cfg.w_affinity)
    scores += static.total.astype(np.float32)
    cooc = None
    if cooccurrence is not None:
        cooc = _dense_part(cooccurrence, snap.size, cfg.w_cooccurrence, "cooccurrence")
    if cooc is not None:  # this block's U x N weighted part (0 where it has no entry)
        scores += cooc.astype(np.float32)
    lift = None if restock is None else _dense_part(restock, snap.size, cfg.w_restock, "restock")
    if lift is not None:
        scores += lift.astype(np.float32)
    if exclude is not None:
        for u, purchased in enumerate(exclude):
            if purchased:
                scores[u, snap.offers_with_items(purchased)] = -np.inf

    k = min(cfg.k, snap.size)
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    top_scores = np.take_along_axis(scores, top, axis=1)
    order = np.lexsort((top, -top_scores), axis=1)
    ranked = np.take_along_axis(top, order, axis=1)
    kept = np.isfinite(np.take_along_axis(scores, ranked, axis=1))
    cooc_top = None
    if cooccurrence is not None:
        cooc_top = np.zeros(ranked.shape) if cooc is None else np.take_along_axis(cooc, ranked, 1)
    lift_top = None
    if restock is not None:
        lift_top = np.zeros(ranked.shape) if lift is None else np.take_along_axis(lift, ranked, 1)
    return scored_offers(
        unit_users, ranked, kept, snap, cfg, static, cooc_top, reasons=reasons, because=because,
        restock=lift_top,
    )  # fmt: skip


@dataclass(frozen=True, eq=False)
class StaticParts:
    """The weighted user-independent parts of every offer's score (N floats each, snapshot
    order) and their sum ``total``, ``-inf`` where the offer is ineligible."""

    value: F64
    popularity: F64
    priority: F64
    exploration: F64
    total: F64


def static_parts(
    snap: CatalogueSnapshot, cfg: ScoringConfig, now_ms: int, exploration: F64
) -> StaticParts:
    """The :class:`StaticParts` of ``snap`` at ``now_ms`` (``exploration``: N floats)."""
    value = cfg.w_value * snap.value_norm
    popularity = cfg.w_popularity * snap.popularity
    priority = cfg.w_priority * snap.priority_norm
    total = np.where(snap.eligible_at(now_ms), value + popularity + priority + exploration, -np.inf)
    return StaticParts(value, popularity, priority, exploration, total)


def scored_offers(
    unit_users: npt.NDArray[np.float32],
    ranked: npt.NDArray[np.integer],
    kept: npt.NDArray[np.bool_],
    snap: CatalogueSnapshot,
    cfg: ScoringConfig,
    static: StaticParts,
    cooccurrence: F64 | None = None,
    *,
    reasons: bool,
    because: Sequence[Because | None] | None = None,
    restock: F64 | None = None,
) -> list[Sequence[ScoredOffer]]:
    """The ``ScoredOffer`` rows of a ranking: ``ranked`` (U x K offer rows, best first) of
    which ``kept`` ones are returned, with their parts in float64 so that they sum to the
    score exactly. ``cooccurrence`` and ``restock``: the weighted part of each ranked offer
    (U x K), each reported only when given."""
    # plain Python numbers in bulk: far cheaper than indexing numpy scalars one by one
    affinity = np.einsum("ud,ukd->uk", unit_users.astype(np.float64), snap.matrix[ranked])
    aff_top = cfg.w_affinity * affinity
    with_cooc = cooccurrence is not None
    cooc_top: F64 = cooccurrence if cooccurrence is not None else np.zeros(ranked.shape)
    with_lift = restock is not None
    lift_top: F64 = restock if restock is not None else np.zeros(ranked.shape)
    top_scores = np.where(kept, aff_top + static.total[ranked] + cooc_top + lift_top, -np.inf)
    score_rows = top_scores.tolist()
    aff_rows = aff_top.tolist()
    value_rows = static.value[ranked].tolist()
    pop_rows = static.popularity[ranked].tolist()
    prio_rows = static.priority[ranked].tolist()
    explore_rows = static.exploration[ranked].tolist()
    cooc_rows: list[list[float]] = cooc_top.tolist()
    lift_rows: list[list[float]] = lift_top.tolist()
    names = (
        *PARTS,
        *((COOCCURRENCE_PART,) if with_cooc else ()),
        *((RESTOCK_PART,) if with_lift else ()),
    )
    n_kept = kept.sum(axis=1).tolist()
    offers = snap.offers
    results: list[Sequence[ScoredOffer]] = []
    for u, indices in enumerate(ranked.tolist()):
        scores = score_rows[u]
        values = [aff_rows[u], value_rows[u], pop_rows[u], prio_rows[u], explore_rows[u]]
        if with_cooc:
            values.append(cooc_rows[u])
        if with_lift:
            values.append(lift_rows[u])
        if n_kept[u] < len(indices):  # some not eligible (-inf): keep the others, in order
            keep = [j for j, score in enumerate(scores) if score != -np.inf]
            indices = [indices[j] for j in keep]
            scores = [scores[j] for j in keep]
            values = [[part[j] for j in keep] for part in values]
        ranking = RankedOffers([offers[i] for i in indices], scores, names, values)
        if reasons:
            source = None if because is None else because[u]
            results.append(with_reasons(unit_users[u], ranking, snap, cfg, source))
        else:
            results.append(ranking)
    return results


def _dense_part(
    per_user: Sequence[SparseRow], n_offers: int, weight: float, name: str
) -> npt.NDArray[np.float64] | None:
    """The users' sparse parts, weighted, as a U x N matrix of this block (``None`` when they
    have no entries). Scattered into zeros and added in one pass: about half the time of a
    scattered addition into the scores, and exactly the same float32 sums."""
    rows = [np.asarray(r, dtype=np.int64) for r, _ in per_user]
    values = [np.asarray(v, dtype=np.float64) for _, v in per_user]
    if not any(len(r) for r in rows):
        return None
    for r, v in zip(rows, values, strict=True):
        if r.shape != v.shape or r.ndim != 1:
            raise ValueError(f"each {name} entry must be two 1-d arrays of one length")
    offer_rows = np.concatenate(rows)
    flat = np.concatenate(values)
    if int(offer_rows.min()) < 0 or int(offer_rows.max()) >= n_offers:
        raise ValueError(f"{name} offer rows must be in [0, {n_offers})")
    if not np.all(np.isfinite(flat)):
        raise ValueError(f"{name} values must be finite")
    lengths = [len(r) for r in rows]
    cells = offer_rows + np.repeat(np.arange(len(rows), dtype=np.int64) * n_offers, lengths)
    part = np.zeros(len(rows) * n_offers)
    part[cells] = weight * flat
    return part.reshape(len(rows), n_offers)


def with_reasons(
    user_unit: npt.NDArray[np.float32],
    ranked: Sequence[ScoredOffer],
    snap: CatalogueSnapshot,
    cfg: ScoringConfig,
    because: Because | None = None,
) -> list[ScoredOffer]:
    """``ranked`` with each ``reason`` built from its score parts (see :mod:`app.core.reasons`).

    Reasons cost a tag projection per offer: build them only for the offers that are sent.
    ``because`` names the recent item behind a dominant co-occurrence part ("Because you
    chose <title>"; see :func:`app.core.cooccurrence.table.because_you_chose`).
    """
    out: list[ScoredOffer] = []
    interest: npt.NDArray[np.float32] | None = None
    for scored in ranked:
        matched: list[str] = []
        if scored.parts["affinity"] > 0:
            if interest is None:  # the user's interest in every known tag, once
                interest = snap.tag_matrix @ user_unit
            row = snap.offer_index[scored.offer_id]
            matched = tags_by_interest(snap.offer_tags[row], interest, snap)
        reason = build_reason(scored.parts, scored.offer, matched, cfg.reason_tags, because)
        out.append(ScoredOffer(scored.offer, scored.score, scored.parts, reason, scored.match))
    return out


def unit_user(user_vec: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """The unit vector of one user as scoring sees it (non-finite or zero -> zeros)."""
    vec = np.asarray(user_vec, dtype=np.float32)
    norm = float(np.sqrt(np.dot(vec, vec)))
    if norm > 0 and np.isfinite(norm):
        return vec / np.float32(norm)
    return np.zeros_like(vec)


def ranking_changed(old: Sequence[str], new: Sequence[str]) -> bool:
    """Whether the ranked offer ids differ (order matters): publish only when true."""
    return list(old) != list(new)
