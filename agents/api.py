"""``nbo api``: the person lookups, served by a process of their own.

``GET /users/{user_id}/offers`` (the last published message, as published),
``GET /users/{user_id}/profile`` (n_events, updated_at, vector norm, strongest tags),
``GET /users/{user_id}/decisions`` (the newest decision records, newest first), each behind
:class:`agents.api_access.ApiAccess` (bearer token, scope, rate); ``GET /healthz``,
``GET /readyz`` (catalogue loaded, Redis answers) are open; ``GET /metrics`` is served on a
port of its own (``NBO_API_METRICS_PORT``) and carries no user data.

Why a process apart from the worker: a lookup costs CPU on the event loop that serves it,
and a client that hammers the API (even one that only gets 429s) would slow the event stream
down if they shared one (measured: a single client at ~1,000 requests a second halved a
worker's drain rate; the same client against a separate process left it unchanged). The
lookups only read Redis, and the item catalogue for the strongest tags (followed like the
workers do, :class:`agents.catalog_feed.CatalogueFeed`); they scale on their own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np
import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import generate_latest
from redis.asyncio.cluster import RedisCluster

from agents.api_access import ApiAccess
from agents.app import store_config
from agents.catalog_feed import CatalogueFeed
from agents.metrics import WorkerMetrics
from app.connections import check_connections, kafka_client_kwargs, redis_client
from app.core.access import Scope
from app.core.catalog import Catalogue
from app.core.fields import USER_ID_PATTERN
from app.core.messages import addressed
from app.core.reasons import PROFILE_TAGS, strongest_tags
from app.settings import Settings
from app.storage.redis_store import RedisProfileStore

log = logging.getLogger(__name__)

_USER_ID = re.compile(USER_ID_PATTERN)
PROMETHEUS_TEXT = "text/plain; version=0.0.4"
NO_DATA = "no data for this user"
"""The one answer for an unknown user and a known user without the data asked for."""

Serve = Callable[[str], Awaitable[web.Response]]


@dataclass
class Lookups:
    """The lookup service's parts (see module doc)."""

    settings: Settings
    store: RedisProfileStore
    catalogue: Catalogue
    feed: CatalogueFeed
    access: ApiAccess
    metrics: WorkerMetrics

    async def offers(self, user_id: str) -> web.Response:
        state = (await self.store.load([user_id]))[user_id]
        if state.offers_json is None:
            return web.json_response({"error": NO_DATA}, status=404)
        # the stored copy names the user's pseudonym when ids are pseudonymised
        body = addressed(state.offers_json, user_id)
        return web.Response(body=body, content_type="application/json")

    async def profile(self, user_id: str) -> web.Response:
        profile = (await self.store.load([user_id]))[user_id].profile
        if profile is None:
            return web.json_response({"error": NO_DATA}, status=404)
        tags = strongest_tags(profile.vec, self.catalogue, n=PROFILE_TAGS)
        return web.json_response(
            {
                "user_id": user_id,
                "n_events": profile.n_events,
                "updated_at": profile.updated_at_ms,
                "vector_dim": profile.dim,
                "vector_norm": float(np.linalg.norm(profile.vec)),
                "strongest_tags": [{"tag": t, "score": round(s, 4)} for t, s in tags],
            }
        )

    async def decisions(self, user_id: str) -> web.Response:
        records = await self.store.decisions(user_id)
        body = b'{"user_id":%s,"decisions":[%s]}' % (
            json.dumps(user_id).encode(),
            b",".join(records),
        )
        return web.Response(body=body, content_type="application/json")

    def guarded(
        self, scope: Scope, endpoint: str, serve: Serve
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """``serve`` behind the access check: 401 / 403 / 429 with a JSON error and nothing
        about the user (not even whether the id is valid), else 400 for an invalid id, else
        what ``serve`` answers; logged and counted with the final status."""

        async def handler(request: web.Request) -> web.StreamResponse:
            answer = self.access.check(request.headers.get("Authorization"), scope, endpoint)
            if answer.status != 200:
                headers = {}
                if not await self.access.hold(answer):
                    headers["Connection"] = "close"  # too many of its refusals held already
                if answer.status == 401:
                    headers["WWW-Authenticate"] = 'Bearer realm="nbo-stream"'
                if answer.retry_after is not None:
                    headers["Retry-After"] = answer.retry_after
                return web.json_response(
                    {"error": answer.error}, status=answer.status, headers=headers
                )
            user_id = request.match_info["user_id"]
            if _USER_ID.match(user_id):
                response = await serve(user_id)
            else:
                response = web.json_response({"error": "invalid user id"}, status=400)
            self.access.record(answer, endpoint, response.status)
            return response

        return handler

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        checks = {"catalogue_loaded": self.feed.ready.is_set(), "redis": await self.store.ping()}
        ok = all(checks.values())
        return web.json_response({"ready": ok, **checks}, status=200 if ok else 503)

    async def metrics_text(self, request: web.Request) -> web.Response:
        body = generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": PROMETHEUS_TEXT})

    def application(self) -> web.Application:
        """The routes (no I/O until served)."""
        app = web.Application()
        app.router.add_get(
            "/users/{user_id}/offers", self.guarded(Scope.OFFERS, "offers", self.offers)
        )
        app.router.add_get(
            "/users/{user_id}/profile", self.guarded(Scope.PROFILE, "profile", self.profile)
        )
        app.router.add_get(
            "/users/{user_id}/decisions",
            self.guarded(Scope.DECISIONS, "decisions", self.decisions),
        )
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        return app

    def metrics_application(self) -> web.Application:
        """``/metrics`` on a port of its own (``NBO_API_METRICS_PORT``), so a network policy
        can admit only the monitoring system to it, and clients only to the lookups."""
        app = web.Application()
        app.router.add_get("/metrics", self.metrics_text)
        return app


def build_lookups(settings: Settings, redis: aioredis.Redis | RedisCluster) -> Lookups:
    """The lookup service of ``settings`` on ``redis`` (no network until it runs)."""
    metrics = WorkerMetrics()
    catalogue = Catalogue(dim=settings.vector_dim)
    store = RedisProfileStore(redis, store_config(settings))
    feed = CatalogueFeed(
        kafka_client_kwargs(settings),
        settings.topic_item_catalog,
        settings.topic_offer_catalog,
        catalogue,
        metrics,
    )
    access = ApiAccess(
        settings.api_tokens_file,
        settings.api_rate_per_s,
        settings.api_burst,
        metrics.registry,
        hold_max_s=settings.api_refusal_hold_s,
    )
    return Lookups(settings, store, catalogue, feed, access, metrics)


async def serve(settings: Settings) -> None:
    """Serve the lookups on ``NBO_API_HOST:NBO_API_PORT`` until SIGTERM or SIGINT."""
    await check_connections(settings)
    redis = redis_client(settings)
    lookups = build_lookups(settings, redis)
    runner = web.AppRunner(lookups.application(), access_log=None)
    metrics_runner = web.AppRunner(lookups.metrics_application(), access_log=None)
    await runner.setup()
    await metrics_runner.setup()
    site = web.TCPSite(runner, settings.api_host, settings.api_port)
    metrics_site = web.TCPSite(metrics_runner, settings.api_host, settings.api_metrics_port)
    feed = asyncio.create_task(lookups.feed.run(), name="catalogue-feed")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await site.start()
        await metrics_site.start()
        log.info(
            "serving lookups on %s:%d, metrics on port %d",
            settings.api_host,
            settings.api_port,
            settings.api_metrics_port,
        )
        await stop.wait()
    finally:
        feed.cancel()
        await runner.cleanup()
        await metrics_runner.cleanup()
        await redis.aclose()


def run_api(settings: Settings) -> None:
    """Run ``nbo api`` in this process."""
    asyncio.run(serve(settings))
