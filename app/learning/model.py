"""The collaborative model behind ``engine_collab``: what ``nbo embed`` learns and publishes.

One training pass over an interaction log gives

* **item vectors** (:mod:`app.learning.factorisation`), rotated onto the tag-hash space and
  blended with each item's tag hash (:mod:`app.learning.tag_space`): the ``vector`` of the
  Item catalogue updates; items without one keep the catalogue's tag-hash fallback;
* an **item-neighbour index** for the recent-items part of the score
  (:mod:`app.core.cooccurrence.index`): learned item-item weights (EASE over sliding windows of
  each user's history, :mod:`app.learning.ease`; the default), the co-occurrence counts of
  :mod:`app.learning.cooccurrence`, or both blended (``CollabConfig.neighbours``). The EASE
  weights blend in a share (``user_ease_share``, default 0.2) of EASE over whole histories,
  stars-weighted: the windows carry what tends to come next, the whole histories the longer
  taste. Either is published on the ``item-neighbours`` topic in the same records and scored
  by the workers with the same code.

:class:`CollabConfig` also carries the engine-side settings the model was tuned with
(profile half-life and score weights) so that the evaluation and the worker agree. The
popularity prior is the worker's own (:mod:`app.core.popularity`), not part of the model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from app.core.cooccurrence.hybrid import HybridConfig
from app.core.cooccurrence.index import CooccurrenceIndex
from app.core.profile import DAY_MS, ProfileConfig
from app.core.vectors import DEFAULT_DIM
from app.learning.cooccurrence import CooccurrenceConfig, learn_cooccurrence
from app.learning.ease import EaseConfig, blend_indexes, learn_ease_neighbours
from app.learning.factorisation import Factorisation, FactorisationConfig, factorise
from app.learning.interactions import InteractionLog
from app.learning.tag_space import DEFAULT_TAG_BLEND, blend_with_tags

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

HOUR_MS = 3_600_000
DEFAULT_HALF_LIFE_MS = 1 * HOUR_MS
"""Profile half-life used with learned vectors (1 hour, tuned on MovieLens, where people rate
in sessions; the engine's default is 7 days)."""
DEFAULT_POPULARITY_HALF_LIFE_MS = 7 * DAY_MS
"""Half-life of the popularity prior used with learned vectors (7 days, tuned)."""


class CollabConfig(BaseModel):
    """How the collaborative model is learned and used (defaults tuned on a validation
    period of ml-latest-small; see ``docs/learning.md``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dim: int = Field(default=DEFAULT_DIM, ge=2)
    """Vector dimension D (default 64, the engine's)."""
    factorisation: FactorisationConfig = FactorisationConfig()
    tag_blend: float = Field(default=DEFAULT_TAG_BLEND, ge=0.0, le=1.0)
    """Share ``beta`` of the tag hash in published vectors (see :mod:`app.learning.tag_space`)."""
    neighbours: Literal["ease", "cooccurrence", "both"] = "ease"
    """Which item-neighbour index the model learns: ``ease`` (learned weights, default),
    ``cooccurrence`` (counts), or ``both`` blended (:func:`app.learning.ease.blend_indexes`,
    ``neighbour_blend`` of EASE)."""
    ease: EaseConfig = EaseConfig()
    """The EASE neighbours (with ``neighbours`` ``ease`` or ``both``)."""
    user_ease: EaseConfig = EaseConfig(window=None, lam=300.0, stars=True)
    """EASE over whole histories, blended into the EASE neighbours (default: stars / 5,
    lambda 300)."""
    user_ease_share: float = Field(default=0.2, ge=0.0, le=1.0)
    """Share of ``user_ease`` in the EASE neighbours (default 0.2; 0: windows only)."""
    cooccurrence: CooccurrenceConfig = CooccurrenceConfig()
    """The co-occurrence neighbours (with ``neighbours`` ``cooccurrence`` or ``both``)."""
    neighbour_blend: float = Field(default=0.5, ge=0.0, le=1.0)
    """Share of the EASE weights in a ``both`` index (default 0.5)."""
    profile: ProfileConfig = ProfileConfig(half_life_ms=DEFAULT_HALF_LIFE_MS)
    """Profile update settings with learned vectors (half-life 1 hour)."""
    popularity_half_life_ms: int | None = Field(default=DEFAULT_POPULARITY_HALF_LIFE_MS, gt=0)
    """Half-life of the worker's popularity prior (:mod:`app.core.popularity`) to use with
    this model, event-time ms (default 7 days); ``None``: no prior."""
    hybrid: HybridConfig = HybridConfig()
    """Score weights: affinity, popularity prior, co-occurrence, and the recent items used."""


@dataclass(frozen=True, eq=False)
class CollabModel:
    """A trained collaborative model (see module docs).

    ``vectors``: item id -> unit float32 vector of length D (only items that have one).
    ``factorisation``: the raw factorisation (user factors for the frozen batch model).
    """

    vectors: Mapping[str, F32]
    cooccurrence: CooccurrenceIndex
    factorisation: Factorisation


def train_collab_model(
    log: InteractionLog,
    item_tags: Mapping[str, Sequence[str]],
    seed: int = 0,
    cfg: CollabConfig | None = None,
) -> CollabModel:
    """Learn vectors and neighbours from ``log`` (deterministic for ``seed``).

    ``item_tags``: item id -> tags, for the tag-space blend (items absent have no tags).
    """
    cfg = cfg if cfg is not None else CollabConfig()
    fact = factorise(log, cfg.dim, seed, cfg.factorisation)
    vectors = blend_with_tags(fact.vectors(), item_tags, cfg.dim, cfg.tag_blend)
    index = learn_neighbours(log, cfg)
    return CollabModel(vectors, index, fact)


def learn_neighbours(log: InteractionLog, cfg: CollabConfig) -> CooccurrenceIndex:
    """The item-neighbour index of ``cfg.neighbours`` over all the items of ``log``."""
    if cfg.neighbours == "cooccurrence":
        return learn_cooccurrence(log, cfg.cooccurrence)
    ease = learn_ease_neighbours(log, cfg.ease)
    if cfg.user_ease_share > 0:
        whole = learn_ease_neighbours(log, cfg.user_ease)
        share = 1.0 - cfg.user_ease_share
        ease = blend_indexes(ease, whole, share, cfg.ease.max_neighbours)
    if cfg.neighbours == "ease":
        return ease
    counts = learn_cooccurrence(log, cfg.cooccurrence)
    width = max(cfg.ease.max_neighbours, cfg.cooccurrence.max_neighbours)
    return blend_indexes(ease, counts, cfg.neighbour_blend, width)
