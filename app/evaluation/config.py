"""Settings of the offline replay evaluation (one frozen model, documented defaults)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.core import defaults
from app.core.calibration import DEFAULT_MIN_BIN
from app.core.popularity import DAY_MS
from app.core.profile import ProfileConfig
from app.core.scoring import ScoringConfig
from app.core.weights import EventWeights
from app.learning.model import CollabConfig

ENGINE_TAGS = "engine_tags"
ENGINE_COLLAB = "engine_collab"
POPULARITY = "popularity"
RANDOM = "random"
BATCH_MODEL = "batch_model"
POPULARITY_POSITIVE = "popularity_positive"
EASE = "ease"
EASE_RECENCY = "ease_recency"
ITEM_KNN = "item_knn"
BASELINES: tuple[str, ...] = (POPULARITY_POSITIVE, EASE, EASE_RECENCY, ITEM_KNN)
"""The strong simple baselines (:mod:`app.evaluation.baselines`), tuned on validation."""
METHODS: tuple[str, ...] = (ENGINE_TAGS, ENGINE_COLLAB, POPULARITY, RANDOM, BATCH_MODEL,
                            *BASELINES)  # fmt: skip
"""The methods compared, by their stable names (report keys)."""


class MatchConfig(BaseModel):
    """How ``engine_collab``'s match is calibrated and judged (:mod:`app.evaluation.calibration`).

    Fitted on the validation period inside the training data (the model learns from the
    events before it, as in tuning), judged on the test period."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    """Calibrate and report (needs ``engine_collab`` among the methods)."""
    horizon: int = Field(default=10, ge=1, le=1000)
    """An offer is taken up when its item is among the user's next ``horizon`` positive
    events (default 10)."""
    depth: int = Field(default=20, ge=1, le=1000)
    """Offers of each query's list calibrated and judged: the worker's candidates, ``NBO_TOP_K``
    x 4 (default 20; at most ``k_max``)."""
    message_k: int = Field(default=defaults.TOP_K, ge=1)
    """Offers per message in the threshold table (default 5, ``NBO_TOP_K``)."""
    min_bin: int = Field(default=DEFAULT_MIN_BIN, ge=1)
    """Least offers per bin of the isotonic fit (default 100)."""
    thresholds: tuple[float, ...] = (0, 2, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30)
    """The ``min_match`` values (percent) of the threshold table."""
    model_version: str = Field(default="collab-v1", min_length=1, max_length=256)
    """``NBO_MODEL_VERSION`` the workers run the collaborative model under (written into the
    calibration's recipe; a worker with another version refuses the calibration)."""


class EvaluationConfig(BaseModel):
    """What :func:`app.evaluation.evaluate` replays and how.

    ``engine_tags`` is the engine as configured today (tag-hash vectors, ``tags_profile``,
    ``tags_scoring``); ``engine_collab`` uses the learned model of ``collab``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 0
    """Seed of the factorisation and of the ``random`` method (default 0)."""
    k_max: int = Field(default=20, ge=1, le=1000)
    """Largest list length K measured; metrics are reported for K = 1..k_max (default 20)."""
    split_quantile: float = Field(default=0.8, gt=0.0, lt=1.0)
    """Events before this quantile of event times train, the rest test (default 0.8)."""
    min_rating: float = Field(default=4.0, ge=0.5, le=5.0)
    """A rating event is positive from this many stars (default 4); likes and purchases
    are always positive."""
    batch_size: int = Field(default=256, ge=1)
    """Queries scored per matrix product (default 256)."""
    methods: tuple[str, ...] = METHODS
    """Methods to run (default all of :data:`METHODS`)."""
    tags_popularity_half_life_ms: int | None = Field(default=DAY_MS, gt=0)
    """Half-life of ``engine_tags``' popularity prior (:mod:`app.core.popularity`), event-time
    ms (default 1 day, the worker's); ``None``: no prior."""
    weights: EventWeights = EventWeights()
    """Event weights of the profiles and of the learning (default: the engine's)."""
    tags_profile: ProfileConfig = ProfileConfig()
    """Profile settings of ``engine_tags`` (default: the engine's, half-life 7 days)."""
    tags_scoring: ScoringConfig = ScoringConfig()
    """Score weights of ``engine_tags`` (default: the engine's); ``k`` is set to ``k_max``."""
    collab: CollabConfig = CollabConfig()
    """The collaborative model and its engine settings (``engine_collab``, ``batch_model``)."""
    match: MatchConfig = MatchConfig()
    """The calibrated match of ``engine_collab`` (:class:`MatchConfig`)."""
    retrain_every_days: float | None = Field(default=None, gt=0.0, le=3650.0)
    """Relearn during the test period, every this many days of event time, from every event
    before the moment: ``engine_collab``'s model (as the nightly ``nbo embed`` does) and the
    item-item weights of ``ease``, ``ease_recency`` and ``item_knn`` alike (their
    hyper-parameters stay validation's). Default ``None``: every model frozen at the split
    (the protocol of the published figures). ``batch_model`` is frozen by definition."""
