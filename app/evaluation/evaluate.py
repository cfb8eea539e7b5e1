"""``evaluate``: replay an event log through the engine and its alternatives, offline.

Protocol (see ``docs/learning.md``):

1. The log is cut at the ``split_quantile`` (0.8) of its event times. The collaborative model
   (vectors, co-occurrence) and the frozen batch model learn only from the events before the
   split.
2. All events are replayed in time order; events after the split keep updating the profiles,
   recent items and the engine's popularity prior, as the stream would.
3. Before each positive test event (like, purchase, rating >= ``min_rating``) on an item the
   user has not interacted with yet, every method ranks the **whole** offer catalogue for that
   user, excluding offers with items the user has interacted with; the rank of the offer
   holding the item gives HitRate@K and NDCG@K (:mod:`app.evaluation.metrics`).

4. With ``engine_collab`` (and ``config.match.enabled``), its match is calibrated on the
   validation period inside the training data and judged on the test period
   (:mod:`app.evaluation.calibration`): the report's ``match``.
5. With ``config.retrain_every_days``, ``engine_collab``'s model and the item-item baselines'
   weights are relearned during the test period from every event before the moment (as the
   nightly ``nbo embed`` does for the workers); by default every model stays frozen at the
   split. The match calibration is fitted on the frozen validation replay either way.

No Kafka, no Redis: the engine methods call the core (``apply_events``, ``Catalogue``,
``score_batch``) directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from functools import partial

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp  # type: ignore[import-untyped]

from app.core.calibration import Calibration, EngineRecipe, FittedOn, isotonic_points
from app.core.catalog import Catalogue, CatalogueSnapshot
from app.core.catalog_records import Item, Offer
from app.core.enums import Channel
from app.core.events import UserEvent
from app.core.popularity import DAY_MS, PopularityFeed
from app.evaluation.baseline_tuning import BaselineParams, tune_baselines
from app.evaluation.baselines import (
    ItemItem,
    PositivePopularity,
    RealTimeEase,
    RealTimeItemKnn,
    design,
    fit_cosine,
    fit_ease,
)
from app.evaluation.bootstrap import Difference, hit_rate_difference
from app.evaluation.calibration import (
    MatchReport,
    TopLists,
    expected_calibration_error,
    next_positive_outcomes,
    reliability,
    threshold_table,
)
from app.evaluation.config import (
    BASELINES,
    BATCH_MODEL,
    EASE,
    EASE_RECENCY,
    ENGINE_COLLAB,
    ENGINE_TAGS,
    ITEM_KNN,
    METHODS,
    POPULARITY,
    POPULARITY_POSITIVE,
    RANDOM,
    EvaluationConfig,
)
from app.evaluation.methods import BatchModel, EngineCollab, EngineTags, Popularity, RandomOrder
from app.evaluation.metrics import RankingMetrics
from app.evaluation.replay import ItemOffers, Method, replay
from app.evaluation.report import Report
from app.evaluation.split import temporal_split
from app.learning.interactions import InteractionLog
from app.learning.model import CollabModel, train_collab_model


def item_offer(item: Item) -> Offer:
    """The item-recommendation offer of one item: same id, title and tags, channel web."""
    return Offer(
        offer_id=item.item_id,
        title=item.title or item.item_id,
        item_ids=(item.item_id,),
        tags=item.tags,
        channels=(Channel.WEB,),
    )


def build_catalogue(
    items: Iterable[Item],
    offers: Iterable[Offer],
    dim: int,
    vectors: dict[str, tuple[float, ...]] | None = None,
) -> Catalogue:
    """A catalogue of ``items`` (explicit vectors replaced by ``vectors``, else none: the tag
    hash) and ``offers``."""
    catalogue = Catalogue(dim)
    learned = vectors or {}
    for item in items:
        catalogue.upsert_item(item.model_copy(update={"vector": learned.get(item.item_id)}))
    for offer in offers:
        catalogue.upsert_offer(offer)
    return catalogue


def _feed(catalogue: Catalogue, half_life_ms: int | None) -> PopularityFeed | None:
    """The worker's popularity feed of ``catalogue`` (``None``: no popularity prior)."""
    return None if half_life_ms is None else PopularityFeed(catalogue, half_life_ms)


def evaluate(
    events: Iterable[UserEvent] | InteractionLog,
    items: Iterable[Item],
    offers_or_items: Iterable[Offer | Item] | None = None,
    config: EvaluationConfig | None = None,
    *,
    progress: Callable[[int], object] | None = None,
    model: CollabModel | None = None,
    top_lists: TopLists | None = None,
    source: str = "events",
) -> Report:
    """Replay ``events`` and compare the methods of ``config`` (module docs).

    ``items``: the item catalogue (tags and titles; explicit vectors are ignored: each engine
    method supplies its own). ``offers_or_items``: what is ranked: offers, and items (each
    becomes :func:`item_offer`); ``None`` ranks every item of ``items``. ``events`` may be
    :class:`~app.core.events.UserEvent` objects or a prepared
    :class:`~app.learning.interactions.InteractionLog` (whose item codes should start with
    the catalogue's items). ``progress`` is called with numbers of events replayed.
    ``model``: a collaborative model already trained on exactly the events before the split
    with ``config.collab`` (saves retraining when only engine settings change; default: train
    one). ``top_lists``: receives ``engine_collab``'s top lists of the replay. ``source``:
    names the data in the match calibration's provenance. Deterministic for ``config.seed``.
    """
    started = time.perf_counter()
    cfg = config if config is not None else EvaluationConfig()
    unknown = set(cfg.methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; known: {list(METHODS)}")
    item_list = list(items)
    ranked = item_list if offers_or_items is None else list(offers_or_items)
    offers = [o if isinstance(o, Offer) else item_offer(o) for o in ranked]
    dim = cfg.collab.dim
    log = (
        events
        if isinstance(events, InteractionLog)
        else InteractionLog.from_events(events, cfg.weights, [i.item_id for i in item_list])
    )
    split_ts = temporal_split(log.ts_ms, cfg.split_quantile)
    end = int(np.searchsorted(log.ts_ms, split_ts, side="left"))
    train = log.subset(np.arange(end))

    train_started = time.perf_counter()
    if model is None and (ENGINE_COLLAB in cfg.methods or BATCH_MODEL in cfg.methods):
        tags = {i.item_id: i.tags for i in item_list}
        model = train_collab_model(train, tags, cfg.seed, cfg.collab)
    train_seconds = time.perf_counter() - train_started

    tags_catalogue = build_catalogue(item_list, offers, dim)
    snap = tags_catalogue.snapshot()
    item_offers = ItemOffers(log.item_ids, snap)
    metrics = {name: RankingMetrics(cfg.k_max, snap.size) for name in cfg.methods}
    positive = log.positives(cfg.min_rating)
    params: BaselineParams | None = None
    methods: list[Method] = []
    if set(BASELINES) & set(cfg.methods) - {POPULARITY_POSITIVE}:
        tune_started = time.perf_counter()
        params = tune_baselines(log, end, positive, item_offers, snap, cfg.split_quantile,
                                min(10, cfg.k_max))  # fmt: skip
        methods += _baselines(cfg, params, log, end, positive, item_offers, snap, metrics)
        train_seconds += time.perf_counter() - tune_started
    for name in cfg.methods:
        if name == ENGINE_TAGS:
            methods.append(
                EngineTags(
                    metrics[name],
                    tags_catalogue,
                    log.item_ids,
                    cfg.tags_profile.model_copy(update={"dim": dim}),
                    cfg.tags_scoring,
                    cfg.batch_size,
                    _feed(tags_catalogue, cfg.tags_popularity_half_life_ms),
                )
            )
        elif name == ENGINE_COLLAB and model is not None:
            vectors = {k: tuple(float(x) for x in v) for k, v in model.vectors.items()}
            hybrid = cfg.collab.hybrid
            collab_catalogue = build_catalogue(item_list, offers, dim, vectors)
            if collab_catalogue.snapshot().offer_ids != snap.offer_ids:
                raise AssertionError("both catalogues must order their offers alike")
            collab = EngineCollab(
                metrics[name],
                collab_catalogue,
                log.item_ids,
                item_offers,
                cfg.collab.profile.model_copy(update={"dim": dim}),
                hybrid.scoring,
                model.cooccurrence,
                hybrid.w_cooccurrence,
                hybrid.recent,
                cfg.batch_size,
                _feed(collab_catalogue, cfg.collab.popularity_half_life_ms),
                retrainer=_retrainer(cfg, item_list),
            )
            if top_lists is None and cfg.match.enabled:
                top_lists = TopLists(min(cfg.match.depth, cfg.k_max))
            collab.top_lists = top_lists
            methods.append(collab)
        elif name == POPULARITY:
            methods.append(Popularity(metrics[name], snap, item_offers))
        elif name == POPULARITY_POSITIVE:
            methods.append(PositivePopularity(metrics[name], snap, item_offers, positive))
        elif name == RANDOM:
            methods.append(RandomOrder(metrics[name], snap, item_offers, cfg.seed))
        elif name == BATCH_MODEL and model is not None:
            known = np.bincount(train.user, minlength=log.n_users) > 0
            fact = model.factorisation
            methods.append(
                BatchModel(
                    metrics[name],
                    snap,
                    item_offers,
                    fact.user_factors,
                    fact.item_factors,
                    known,
                    cfg.batch_size,
                )
            )
    stats = replay(
        log,
        split_ts,
        positive,
        item_offers,
        methods,
        cfg.collab.hybrid.recent.n_recent,
        progress,
        None if cfg.retrain_every_days is None else round(cfg.retrain_every_days * DAY_MS),
    )
    order = {name: n for n, name in enumerate(cfg.methods)}
    methods.sort(key=lambda m: order[m.name])
    results = {m.name: m.metrics.result(stats.seconds.get(m.name, 0.0)) for m in methods}
    comparisons = _compare(methods, ENGINE_COLLAB, min(10, cfg.k_max), cfg.seed)
    match = None
    if cfg.match.enabled and top_lists is not None and len(top_lists):
        fit_started = time.perf_counter()
        fitted = _fit_match(log, end, item_list, offers, cfg, source, item_offers)
        train_seconds += time.perf_counter() - fit_started
        if fitted is not None:
            match = _judge_match(*fitted, top_lists, log, positive, item_offers, cfg)
    return Report(
        methods=results,
        stats=stats,
        split_ts_ms=split_ts,
        k_max=cfg.k_max,
        n_offers=snap.size,
        seed=cfg.seed,
        config=cfg.model_dump(mode="json"),
        seconds=time.perf_counter() - started,
        train_seconds=train_seconds,
        comparisons=comparisons,
        baseline_params=asdict(params) if params is not None else {},
        match=match,
    )


def collab_recipe(cfg: EvaluationConfig) -> EngineRecipe:
    """The worker settings under which ``engine_collab``'s scores are those of the replay
    (the recipe a calibration of them is valid for)."""
    hybrid = cfg.collab.hybrid
    return EngineRecipe(
        model_version=cfg.match.model_version,
        vector_dim=cfg.collab.dim,
        w_affinity=hybrid.scoring.w_affinity,
        w_value=hybrid.scoring.w_value,
        w_popularity=hybrid.scoring.w_popularity,
        w_priority=hybrid.scoring.w_priority,
        w_cooccurrence=hybrid.w_cooccurrence,
        cooccurrence=hybrid.w_cooccurrence > 0,
        profile_half_life_ms=cfg.collab.profile.half_life_ms,
        popularity_half_life_ms=cfg.collab.popularity_half_life_ms,
        recent_items=hybrid.recent.n_recent,
        recency_decay=hybrid.recent.recency_decay,
        cooccurrence_exponent=hybrid.recent.exponent,
    )


def _retrainer(
    cfg: EvaluationConfig, items: list[Item]
) -> Callable[[InteractionLog], CollabModel] | None:
    """What ``engine_collab`` relearns its model with (``None``: frozen at the split)."""
    if cfg.retrain_every_days is None:
        return None
    tags = {i.item_id: i.tags for i in items}
    return partial(train_collab_model, item_tags=tags, seed=cfg.seed, cfg=cfg.collab)


def _fit_match(
    log: InteractionLog,
    end: int,
    items: list[Item],
    offers: list[Offer],
    cfg: EvaluationConfig,
    source: str,
    item_offers: ItemOffers,
) -> tuple[Calibration, float] | None:
    """``engine_collab``'s match calibration, fitted on the validation period inside the
    training rows ``[0, end)`` (a model learned from the events before it, as in tuning), and
    its expected calibration error there (in sample); ``None`` when the validation period has
    no query."""
    m = cfg.match
    train = log.subset(np.arange(end))
    val_split = temporal_split(train.ts_ms, cfg.split_quantile)
    val_end = int(np.searchsorted(train.ts_ms, val_split, side="left"))
    tags = {i.item_id: i.tags for i in items}
    model = train_collab_model(train.subset(np.arange(val_end)), tags, cfg.seed, cfg.collab)
    lists = TopLists(min(m.depth, cfg.k_max))
    inner = cfg.model_copy(
        update={
            "methods": (ENGINE_COLLAB,),
            "match": m.model_copy(update={"enabled": False}),
            "retrain_every_days": None,
        }
    )
    report = evaluate(train, items, offers, inner, model=model, top_lists=lists)
    if not len(lists):
        return None  # nothing to fit on: no match reported
    outcomes = next_positive_outcomes(
        lists, train, train.positives(cfg.min_rating), item_offers, m.horizon
    )
    y = np.concatenate(outcomes)
    points = isotonic_points(lists.flat_scores(), y, m.min_bin)
    calibration = Calibration(
        target=f"the offer's item is among the user's next {m.horizon} positive events",
        engine=collab_recipe(cfg),
        fitted_on=FittedOn(
            source=source[:256] or "events",
            period_start_ms=report.split_ts_ms,
            period_end_ms=int(train.ts_ms[-1]),
            offers=int(y.size),
            positives=int(y.sum()),
            depth=lists.depth,
            horizon=m.horizon,
            min_bin=m.min_bin,
        ),
        points=tuple(points),
    )
    predicted = calibration.probability(lists.flat_scores())
    return calibration, expected_calibration_error(reliability(predicted, y))


def _judge_match(
    calibration: Calibration,
    validation_ece: float,
    lists: TopLists,
    log: InteractionLog,
    positive: npt.NDArray[np.bool_],
    item_offers: ItemOffers,
    cfg: EvaluationConfig,
) -> MatchReport:
    """The calibration on the test period's lists: reliability, ECE and thresholds."""
    outcomes = next_positive_outcomes(lists, log, positive, item_offers, cfg.match.horizon)
    y = np.concatenate(outcomes)
    predicted = calibration.probability(lists.flat_scores())
    table = reliability(predicted, y)
    matches = [calibration.match(s) for s in lists.scores]
    return MatchReport(
        calibration=calibration,
        offers=int(y.size),
        positives=int(y.sum()),
        reliability=table,
        ece=expected_calibration_error(table),
        validation_ece=validation_ece,
        thresholds=threshold_table(
            matches, lists.hits(), outcomes, cfg.match.message_k, cfg.match.thresholds
        ),
        message_k=cfg.match.message_k,
    )


def _baselines(
    cfg: EvaluationConfig,
    params: BaselineParams,
    log: InteractionLog,
    end: int,
    positive: npt.NDArray[np.bool_],
    offers: ItemOffers,
    snap: CatalogueSnapshot,
    metrics: dict[str, RankingMetrics],
) -> list[Method]:
    """The item-item baselines of ``cfg.methods``, refitted on every training event with the
    hyper-parameters chosen on validation (and, with ``cfg.retrain_every_days``, refitted on
    every event before each retraining moment: one fit per matrix per moment, shared)."""
    everything = np.ones_like(positive)
    xs: dict[str, sp.csr_matrix] = {}
    out: list[Method] = []
    fits: dict[tuple[str, float], ItemItem] = {}
    later: dict[tuple[str, str, float, int], ItemItem] = {}

    def refit(kind: str, fit: str, lam: float = 0.0) -> Callable[[int], ItemItem] | None:
        if cfg.retrain_every_days is None:
            return None

        def at(stop: int) -> ItemItem:
            key = (kind, fit, lam, stop)
            if key not in later:
                if any(k[3] != stop for k in later):
                    later.clear()  # one moment's matrices at a time (each items x items)
                x = design(log, stop, positive, fit)
                later[key] = fit_ease(x, lam) if kind == "ease" else fit_cosine(x)
            return later[key]

        return at

    def matrix(fit: str) -> sp.csr_matrix:
        if fit not in xs:
            xs[fit] = design(log, end, positive, fit)
        return xs[fit]

    def ease(fit: str, lam: float) -> ItemItem:
        if (fit, lam) not in fits:
            fits[fit, lam] = fit_ease(matrix(fit), lam)
        return fits[fit, lam]

    if EASE in cfg.methods:
        history = everything if params.ease_all_events else positive
        weights = ease(params.ease_fit, params.ease_lambda)
        again = refit("ease", params.ease_fit, params.ease_lambda)
        out.append(RealTimeEase(metrics[EASE], snap, offers, weights, history, refit=again))
    if EASE_RECENCY in cfg.methods:
        half = params.ease_recency_half_life_ms
        history = everything if params.ease_recency_all_events else positive
        out.append(RealTimeEase(metrics[EASE_RECENCY], snap, offers,
                                ease(params.ease_recency_fit, params.ease_recency_lambda),
                                history, float(half) if half is not None else None,
                                EASE_RECENCY, params.ease_recency_step_decay,
                                refit("ease", params.ease_recency_fit,
                                      params.ease_recency_lambda)))  # fmt: skip
    if ITEM_KNN in cfg.methods:
        out.append(RealTimeItemKnn(metrics[ITEM_KNN], snap, offers,
                                   fit_cosine(matrix(params.knn_fit)),
                                   params.knn_n_recent, params.knn_decay,
                                   refit=refit("cosine", params.knn_fit)))  # fmt: skip
    return out


def _compare(methods: list[Method], reference: str, k: int, seed: int) -> dict[str, Difference]:
    """The reference method's HitRate@k minus each other method's, with its bootstrap interval
    over users (:mod:`app.evaluation.bootstrap`); empty without the reference."""
    by_name = {m.name: m for m in methods}
    if reference not in by_name or by_name[reference].metrics.n_queries == 0:
        return {}
    _, users, ranks = by_name[reference].metrics.per_query()
    out = {}
    for m in methods:
        if m.name == reference:
            continue
        _, other_users, other_ranks = m.metrics.per_query()
        if not np.array_equal(users, other_users):
            continue
        out[m.name] = hit_rate_difference(users, ranks, other_ranks, k, seed=seed)
    return out
