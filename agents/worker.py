"""What one worker process holds: the faust app, its ports and adapters, the pipeline.

Built by :func:`agents.app.build_worker`; every agent, timer and view receives it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from agents.catalog_feed import CatalogueFeed
from agents.metrics import WorkerMetrics
from app.core.catalog import Catalogue
from app.core.cooccurrence.table import NeighbourTable
from app.pipeline.processor import BatchProcessor
from app.settings import Settings
from app.storage.redis_store import RedisProfileStore


@dataclass
class Worker:
    """Everything one worker process holds."""

    settings: Settings
    app: Any  # faust.App (untyped library)
    catalogue: Catalogue
    neighbours: NeighbourTable
    store: RedisProfileStore
    redis: aioredis.Redis | RedisCluster
    feed: CatalogueFeed
    processor: BatchProcessor
    metrics: WorkerMetrics
