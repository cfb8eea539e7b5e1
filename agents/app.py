"""Builds the worker: the faust app, its ports and adapters, agents, tasks and web views.

:func:`build_worker` does no I/O: clients connect when the worker starts. Run it with
``nbo worker`` (:func:`run_worker`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from agents.batch_delivery import App, FetchTuning
from agents.catalog_feed import CatalogueFeed
from agents.consent import register_consent_agent
from agents.events import register_event_agent
from agents.faust_worker import faust_worker
from agents.heap import tune_collector
from agents.metrics import WorkerMetrics
from agents.privacy import register_privacy_agent
from agents.publisher import FaustPublisher
from agents.topic_watch import learn_topic_id
from agents.web import register_views
from agents.worker import Worker
from app.clock import now_ms
from app.connections import (
    check_connections,
    faust_credentials,
    kafka_client_kwargs,
    redis_client,
)
from app.core.catalog import Catalogue
from app.core.cooccurrence.table import NeighbourTable
from app.logs import logging_config
from app.pipeline.config import PipelineConfig, pipeline_config
from app.pipeline.processor import BatchProcessor
from app.settings import Settings, kafka_bootstrap_or_local, pseudonym_secret
from app.storage.offer_stats import OfferStatsConfig, RedisOfferStatsStore
from app.storage.redis_store import RedisProfileStore, RedisStoreConfig
from app.topics import ensure_topics, topic_specs

log = logging.getLogger(__name__)


def store_config(settings: Settings) -> RedisStoreConfig:
    """The Redis store's configuration of ``settings`` (the worker's and the lookups')."""
    return RedisStoreConfig(
        dim=settings.vector_dim,
        ttl_s=settings.user_ttl_s,
        prefix=settings.redis_prefix,
        decisions_cap=settings.decisions_kept,
        secret=pseudonym_secret(settings),
        # the recent items ride along with every load, only when co-occurrence is on
        recent_items=settings.recent_items if settings.w_cooccurrence > 0 else 0,
        ack_replicas=settings.redis_ack_replicas,
        ack_timeout_ms=settings.redis_ack_timeout_ms,
    )


def build_worker(settings: Settings) -> Worker:
    """The worker for ``settings`` (no network until it starts)."""
    bootstrap = kafka_bootstrap_or_local(settings)
    app = App(
        settings.app_id,
        broker=[f"kafka://{server.strip()}" for server in bootstrap.split(",")],
        store="memory://",
        autodiscover=False,
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.user_events_partitions,
        topic_allow_declare=settings.declare_topics,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        broker_credentials=faust_credentials(settings),
        processing_guarantee="at_least_once",
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        broker_commit_interval=settings.commit_interval_s,
        # a fetch of user-events is one batch of the agent's (agents/fetches.py)
        broker_max_poll_records=settings.batch_size,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        # faust's own routes show internals (tables, routing, statistics): ours only
        web_router_enabled=False,
        web_tables_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        web_metrics_enabled=False,
    )
    app.fetch_tuning = FetchTuning(
        min_bytes=settings.fetch_min_bytes, max_wait_ms=round(settings.fetch_max_wait_s * 1000)
    )
    catalogue = Catalogue(dim=settings.vector_dim)
    neighbours = NeighbourTable(max_neighbours=settings.neighbours_max)
    metrics = WorkerMetrics()
    redis = redis_client(settings)
    store = RedisProfileStore(
        redis,
        store_config(settings),
    )
    feed = CatalogueFeed(
        kafka_client_kwargs(settings),
        settings.topic_item_catalog,
        settings.topic_offer_catalog,
        catalogue,
        metrics,
        neighbours_topic=settings.topic_item_neighbours,
        neighbours=neighbours,
    )
    offer_stats = RedisOfferStatsStore(
        redis,
        OfferStatsConfig(
            half_life_ms=int(settings.offer_stats_half_life_s * 1000),
            ttl_s=settings.user_ttl_s,
            prefix=settings.redis_prefix,
        ),
    )
    config = pipeline_config(settings)
    log_calibration(config)
    processor = BatchProcessor(
        store,
        FaustPublisher(app),
        catalogue,
        config,
        now_ms,
        offer_stats=offer_stats,
        neighbours=neighbours,
    )
    worker = Worker(settings, app, catalogue, neighbours, store, redis, feed, processor, metrics)
    register_event_agent(worker)
    register_consent_agent(worker)
    register_privacy_agent(worker)
    register_views(worker)
    _register_tasks(worker)
    return worker


def log_calibration(config: PipelineConfig) -> None:
    """Say at start whether offers carry a calibrated match, and whether ``min_match`` holds
    weak offers back (without a calibration it cannot: nothing is held back on that ground)."""
    calibration = config.calibration
    thresholds = ", ".join(f"{c.value} {t:g} %" for c, t in config.policy.match_thresholds)
    if calibration is None:
        if thresholds:
            log.warning(
                "no calibration (NBO_CALIBRATION_PATH unset): offers carry no match and the "
                "policy's min_match (%s) holds nothing back",
                thresholds,
            )
        return
    fitted = calibration.fitted_on
    log.info(
        "match calibrated (%s, %d points, fitted on %s, %d offers); min_match: %s",
        calibration.method,
        len(calibration.points),
        fitted.source,
        fitted.offers,
        thresholds or "none",
    )


def _register_tasks(worker: Worker) -> None:
    app = worker.app

    async def follow_catalogue() -> None:
        await worker.feed.run()

    async def forget_users(sender: Any, revoked: Any, **kwargs: Any) -> None:
        worker.processor.forget_cached_users()

    async def forget_users_on_assign(sender: Any, assigned: Any, **kwargs: Any) -> None:
        worker.processor.forget_cached_users()
        await learn_topic_id(worker)

    async def fire_cart_timers() -> None:
        if app.consumer is None or not worker.feed.ready.is_set():
            return
        topic = worker.settings.topic_user_events
        owned = sorted(
            (tp.topic, tp.partition) for tp in app.consumer.assignment() if tp.topic == topic
        )
        try:
            made = await worker.processor.fire_due_carts(owned)
        except Exception:  # the timers stay in Redis: the next poll retries them
            log.exception("firing cart timers failed; retrying at the next poll")
            return
        worker.metrics.cart_decisions.inc(made)

    app.task(follow_catalogue)
    app.timer(worker.settings.cart_poll_interval_s, name="nbo.cart-timers")(fire_cart_timers)
    app.on_partitions_revoked.connect(forget_users)
    app.on_partitions_assigned.connect(forget_users_on_assign)


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    """Run a worker in this process until SIGTERM or SIGINT."""
    asyncio.run(check_connections(settings))  # one clear line on bad credentials
    if settings.declare_topics:
        asyncio.run(
            ensure_topics(
                kafka_client_kwargs(settings),
                topic_specs(settings),
                settings.topic_replication_factor,
            )
        )
    worker = build_worker(settings)
    tune_collector()
    log.info("starting worker %s", settings.app_id)
    level = {"crit": "CRITICAL", "warn": "WARNING"}.get(loglevel, loglevel.upper())
    faust_worker(
        worker.app, loglevel, logging_config=logging_config(settings.log_format, level)
    ).execute_from_commandline()
