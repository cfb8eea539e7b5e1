"""Configuration of the batch pipeline, and how it is built from :class:`app.settings.Settings`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from app.core import defaults
from app.core.ann import AnnConfig
from app.core.calibration import (
    MAX_CALIBRATION_BYTES,
    Calibration,
    CalibrationError,
    EngineRecipe,
    parse_calibration,
)
from app.core.cooccurrence.index import RecentItemsConfig
from app.core.decoding import DEFAULT_MAX_BYTES
from app.core.exploration import ExplorationConfig
from app.core.profile import ProfileConfig
from app.core.restock import RestockConfig
from app.core.scoring import ScoringConfig
from app.core.weights import EventWeights
from app.policy.config import ContactPolicy, default_policy, load_policy
from app.settings import Settings, pseudonym_secret


def _setting(name: str) -> Any:
    """The default of setting ``name``: the pipeline's defaults are the settings' own."""
    return Settings.model_fields[name].default


MAX_AHEAD_MS = int(_setting("max_clock_skew_s") * 1000)
"""Default of how far ahead of the worker's clock a record may be dated, ms."""


@dataclass(frozen=True)
class PipelineConfig:
    """Everything :class:`~app.pipeline.processor.BatchProcessor` needs besides its ports.

    Its defaults are those of the settings (:mod:`app.settings`) and of the model
    (:mod:`app.core.defaults`): the worker builds it with :func:`pipeline_config`, and a
    configuration built with defaults behaves as a worker with default settings.

    ``cache_users``: profiles kept in the worker's memory between batches (default 20,000),
    so a warm batch costs one Redis round trip. ``max_conflict_rounds``: how often a batch
    re-reads users whose compare-and-set failed before giving up (default 5).
    ``candidate_factor``: offers ranked per user are ``k`` times this (default 4), so a message
    still has ``k`` offers after keeping only those allowed on its channel.
    ``assume_unknown_users_new``: a user not in the cache is first written as a new user (no
    read); if one exists, the compare-and-set fails and returns the stored state, and the user
    is redone with it. New users then cost no read at all, known ones one extra round trip,
    the same as reading first (default true; false reads misses first).
    ``popularity_half_life_ms``: half-life of the popularity prior, event time (1 day).
    ``popularity_refresh_ms``: how often offers' popularity is recomputed, wall clock (5 s).
    ``decisions_topic``: where one audit record per decision goes. ``policy``: the contact
    policy (default: the shipped one). ``cart_delay_ms``: an ``add_to_cart`` without a
    purchase of the item for this long (event time) fires a cart decision (30 min).
    ``cart_poll_limit``: due users per partition per poll, and per pass of the lock (100).
    ``pseudonym_secret``: pseudonymise user ids in decision records (default none).
    ``exploration``: Thompson sampling on offer feedback (:mod:`app.core.exploration`).
    ``offer_stats_refresh_ms``: how often the offer feedback stats of every partition of
    ``events_topic`` (``events_partitions`` of them) are reread, wall clock (5 s).
    ``holdout_share``: share of users in the control group (popularity ranking through the
    same policy; 5 %); ``holdout_salt`` keys it.
    ``recent``: how each user's recent items (newest first: the batch's own item events, then
    the stored ones) weigh in the co-occurrence part, which counts only when
    ``scoring.w_cooccurrence > 0`` and the processor's neighbour table has items.
    """

    offers_topic: str = _setting("topic_offers")
    dead_letter_topic: str = _setting("topic_dead_letters")
    decisions_topic: str = _setting("topic_decisions")
    model_version: str = _setting("model_version")
    offer_ttl_ms: int = _setting("offer_ttl_s") * 1000
    max_event_bytes: int = DEFAULT_MAX_BYTES
    max_ahead_ms: int = MAX_AHEAD_MS
    """Events dated more than this after the worker's clock are dead-lettered."""
    cache_users: int = _setting("cache_users")
    max_conflict_rounds: int = 5
    candidate_factor: int = 4
    assume_unknown_users_new: bool = True
    popularity_half_life_ms: int = defaults.POPULARITY_HALF_LIFE_S * 1000
    popularity_refresh_ms: int = 5_000
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    weights: EventWeights = field(default_factory=EventWeights)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    policy: ContactPolicy = field(default_factory=default_policy)
    cart_delay_ms: int = int(_setting("cart_abandon_after_s") * 1000)
    cart_poll_limit: int = 100
    pseudonym_secret: bytes | None = None
    exploration: ExplorationConfig = field(default_factory=ExplorationConfig)
    offer_stats_refresh_ms: int = int(_setting("offer_stats_refresh_s") * 1000)
    events_topic: str = _setting("topic_user_events")
    events_partitions: int = _setting("user_events_partitions")
    holdout_share: float = defaults.HOLDOUT_SHARE
    holdout_salt: str = defaults.HOLDOUT_SALT
    ann: AnnConfig | None = field(default_factory=AnnConfig)
    """Approximate candidate retrieval for catalogues of at least ``ann.min_offers`` offers
    (:mod:`app.core.ann`; ``None``: always exact). Not combined with the co-occurrence part:
    a batch that has one is scored exactly."""
    recent: RecentItemsConfig = field(default_factory=RecentItemsConfig)
    restock: RestockConfig = field(default_factory=RestockConfig)
    """Repurchase cycles of repeatable items (:mod:`app.core.restock`)."""
    calibration: Calibration | None = None
    """The match calibration (:mod:`app.core.calibration`; ``NBO_CALIBRATION_PATH``):
    personalised decisions give each candidate its calibrated match and apply the policy's
    ``min_match``. ``None`` (default): no match, no ``min_match``."""

    def recipe(self, cooccurrence: bool) -> EngineRecipe:
        """This engine's :class:`~app.core.calibration.EngineRecipe` (``cooccurrence``:
        whether its scores have the co-occurrence part)."""
        s = self.scoring
        return EngineRecipe(
            model_version=self.model_version,
            vector_dim=self.profile.dim,
            w_affinity=s.w_affinity,
            w_value=s.w_value,
            w_popularity=s.w_popularity,
            w_priority=s.w_priority,
            w_cooccurrence=s.w_cooccurrence,
            cooccurrence=cooccurrence,
            profile_half_life_ms=self.profile.half_life_ms,
            popularity_half_life_ms=self.popularity_half_life_ms,
            recent_items=self.recent.n_recent,
            recency_decay=self.recent.recency_decay,
            cooccurrence_exponent=self.recent.exponent,
        )


def load_calibration(path: str | PathLike[str]) -> Calibration:
    """Read and validate the calibration file at ``path`` (at most
    :data:`~app.core.calibration.MAX_CALIBRATION_BYTES`); :class:`CalibrationError` says why
    not."""
    try:
        with Path(path).open("rb") as f:
            data = f.read(MAX_CALIBRATION_BYTES + 1)
    except OSError as exc:
        raise CalibrationError(f"{path}: cannot read: {exc}") from None
    return parse_calibration(data, str(path))


def with_calibration(config: PipelineConfig, calibration: Calibration) -> PipelineConfig:
    """``config`` using ``calibration``, which must have been fitted for this engine: the
    same model version, vector dimension, score weights, half-lives and recent items
    (whether the co-occurrence part is on is checked per ranking); else
    :class:`CalibrationError` lists what differs."""
    fitted = calibration.engine
    differs = fitted.differences(config.recipe(fitted.cooccurrence))
    if differs:
        raise CalibrationError(
            "the calibration was fitted for another engine (calibration != worker): "
            + "; ".join(differs)
        )
    return dataclasses.replace(config, calibration=calibration)


def pipeline_config(settings: Settings) -> PipelineConfig:
    """The pipeline's configuration from the settings (reads the policy file and the
    calibration file, if named; :class:`CalibrationError` if the calibration does not fit)."""
    policy = load_policy(settings.policy_path) if settings.policy_path else default_policy()
    config = PipelineConfig(
        offers_topic=settings.topic_offers,
        dead_letter_topic=settings.topic_dead_letters,
        decisions_topic=settings.topic_decisions,
        policy=policy,
        cart_delay_ms=int(settings.cart_abandon_after_s * 1000),
        pseudonym_secret=pseudonym_secret(settings),
        exploration=ExplorationConfig(
            weight=settings.exploration_weight,
            seed=settings.exploration_seed,
            half_life_ms=int(settings.offer_stats_half_life_s * 1000),
        ),
        offer_stats_refresh_ms=int(settings.offer_stats_refresh_s * 1000),
        events_topic=settings.topic_user_events,
        events_partitions=settings.user_events_partitions,
        holdout_share=settings.holdout_share,
        holdout_salt=settings.holdout_salt,
        ann=AnnConfig(min_offers=settings.ann_min_offers) if settings.ann_min_offers else None,
        model_version=settings.model_version,
        max_ahead_ms=int(settings.max_clock_skew_s * 1000),
        offer_ttl_ms=settings.offer_ttl_s * 1000,
        cache_users=settings.cache_users,
        profile=ProfileConfig(
            dim=settings.vector_dim,
            half_life_ms=int(settings.half_life_s * 1000),
            recent_ids_max=settings.recent_event_ids,
        ),
        scoring=ScoringConfig(
            k=settings.top_k,
            # every score part's weight is the setting of the same name (NBO_W_<PART>)
            **{name: getattr(settings, name) for name in ScoringConfig.weight_names()},
        ),
        weights=settings.event_weights,
        recent=RecentItemsConfig(n_recent=settings.recent_items),
        restock=RestockConfig(
            due_fraction=settings.restock_due_fraction,
            smoothing=settings.restock_smoothing,
            prior_ms=round(settings.restock_prior_days * defaults.DAY_MS),
            items_max=settings.restock_items_max,
        ),
        popularity_half_life_ms=int(settings.popularity_half_life_s * 1000),
    )
    if settings.calibration_path is None:
        return config
    return with_calibration(config, load_calibration(settings.calibration_path))
