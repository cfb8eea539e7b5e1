"""Ranking a batch of users: one interface, and the one place that chooses how.

A :class:`Ranker` turns user vectors into each user's scored candidates, best first (reasons
are left empty: they are built only for what is sent, see :mod:`app.pipeline.decisions`).
Two implementations:

* exact: every eligible offer scored with one matrix product (:func:`app.core.scoring.score_batch`),
  with the co-occurrence part of each user's recent items when it is on, and the restock part
  of the repeatable items each user is due to buy again (:mod:`app.core.restock`);
* approximate: the candidate index of a large catalogue (:mod:`app.core.ann`), which itself
  scores exactly below ``ann.min_offers`` offers.

:class:`BatchRanking` picks one per batch: the co-occurrence part needs exact scoring, so a
batch that has one is scored exactly (so is a batch with a user due to restock an item);
otherwise the candidate index when it is configured.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from app.core.ann import CandidateIndex, IndexStats
from app.core.catalog import Catalogue
from app.core.cooccurrence.index import SparseRow
from app.core.cooccurrence.table import NeighbourTable
from app.core.ranked import ScoredOffer
from app.core.reasons import Because
from app.core.restock import restock_rows
from app.core.scoring import ScoringConfig, score_batch
from app.pipeline.config import PipelineConfig

Vectors = npt.NDArray[np.float32]
Exploration = npt.NDArray[np.float64]


class Ranker(Protocol):
    """Each user's top candidates, best first, reasons left empty."""

    def rank(
        self,
        users: Vectors,
        now_ms: int,
        exclude: Sequence[Collection[str]],
        *,
        exploration: Exploration | None,
        cooccurrence: Sequence[SparseRow] | None,
        restock: Sequence[SparseRow] | None = None,
    ) -> list[Sequence[ScoredOffer]]:
        """``users``: U x D; ``exclude``: per user, purchased item ids; ``exploration``: per
        offer of the snapshot; ``cooccurrence`` and ``restock``: per user, that part
        (``None``: off)."""
        ...


class ExactRanker:
    """Every eligible offer scored (see module doc)."""

    def __init__(self, catalogue: Catalogue, candidates: ScoringConfig) -> None:
        self._catalogue = catalogue
        self._candidates = candidates

    def rank(
        self,
        users: Vectors,
        now_ms: int,
        exclude: Sequence[Collection[str]],
        *,
        exploration: Exploration | None,
        cooccurrence: Sequence[SparseRow] | None,
        restock: Sequence[SparseRow] | None = None,
    ) -> list[Sequence[ScoredOffer]]:
        return score_batch(
            users, now_ms, self._catalogue, self._candidates, exclude, reasons=False,
            exploration=exploration, cooccurrence=cooccurrence, restock=restock,
        )  # fmt: skip


class ApproximateRanker:
    """Candidates from the approximate index of a large catalogue (see module doc)."""

    def __init__(
        self, catalogue: Catalogue, candidates: ScoringConfig, index: CandidateIndex
    ) -> None:
        self._catalogue = catalogue
        self._candidates = candidates
        self.index = index

    def rank(
        self,
        users: Vectors,
        now_ms: int,
        exclude: Sequence[Collection[str]],
        *,
        exploration: Exploration | None,
        cooccurrence: Sequence[SparseRow] | None,
        restock: Sequence[SparseRow] | None = None,
    ) -> list[Sequence[ScoredOffer]]:
        if cooccurrence is not None or restock is not None:
            raise ValueError("the approximate ranker has no co-occurrence or restock part")
        return self.index.score_batch(
            users, now_ms, self._catalogue, self._candidates, exclude, reasons=False,
            exploration=exploration,
        )  # fmt: skip


class BatchRanking:
    """The worker's ranking: exact or approximate per batch, and the co-occurrence part."""

    def __init__(
        self,
        catalogue: Catalogue,
        config: PipelineConfig,
        neighbours: NeighbourTable | None = None,
    ) -> None:
        self._catalogue = catalogue
        self._cfg = config
        self._neighbours = neighbours
        # rank more than K so that K remain after the policy drops offers
        k = config.scoring.k * config.candidate_factor
        candidates = config.scoring.model_copy(update={"k": min(k, 1000)})
        self._exact = ExactRanker(catalogue, candidates)
        self._approximate = (
            ApproximateRanker(catalogue, candidates, CandidateIndex(config.ann))
            if config.ann is not None
            else None
        )

    @property
    def ann_stats(self) -> IndexStats | None:
        """Counters of the approximate candidate index (``None`` when it is off)."""
        return self._approximate.index.stats if self._approximate is not None else None

    def warm_up(self) -> None:
        """Build the catalogue's arrays and, for a large catalogue, the candidate index now."""
        self._catalogue.snapshot()
        if self._approximate is not None:
            self._approximate.index.prepare(self._catalogue)

    def cooccurrence_on(self) -> bool:
        """Whether rankings get the co-occurrence part now (weight set, neighbours known)."""
        table = self._neighbours
        return self._cfg.scoring.w_cooccurrence > 0 and table is not None and len(table) > 0

    def because(self, recent: tuple[str, ...]) -> Because | None:
        """What names the source of a user's co-occurrence reasons (``None``: off)."""
        if self._neighbours is None or not recent or not self.cooccurrence_on():
            return None
        return self._neighbours.because(recent, self._cfg.recent, self._catalogue)

    def rank(
        self,
        users: Vectors,
        now_ms: int,
        exclude: Sequence[Collection[str]],
        *,
        exploration: Exploration | None,
        recent: Sequence[tuple[str, ...]] | None = None,
        due: Sequence[Mapping[str, float]] | None = None,
    ) -> list[Sequence[ScoredOffer]]:
        """Each user's candidates; ``recent``: per user, recent item ids newest first, for
        the co-occurrence part (``None``: none, e.g. a cart timer); ``due``: per user, the
        repeatable items due to be bought again with their due-ness, for the restock part
        (``None`` or all empty: none)."""
        cooccurrence = None
        if recent is not None and self._neighbours is not None and self.cooccurrence_on():
            snap = self._catalogue.snapshot()
            cooccurrence = self._neighbours.scores(recent, snap, self._cfg.recent)
        restock = None
        if due is not None and any(due):
            snap = self._catalogue.snapshot()
            restock = [restock_rows(d, snap) for d in due]
        ranker: Ranker = self._exact
        if cooccurrence is None and restock is None and self._approximate is not None:
            ranker = self._approximate
        return ranker.rank(
            users, now_ms, exclude, exploration=exploration, cooccurrence=cooccurrence,
            restock=restock,
        )  # fmt: skip
