"""The console's Overview and Offers pages and its charts (the handlers; the arithmetic is in
:mod:`app.console.overview`, :mod:`app.console.offers`, :mod:`app.console.charts`).

Charts are PNGs of their own (``/charts/...``, behind the session like every page), drawn in
a worker thread one at a time and kept until the next sample (or Lift read) changes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web

from agents.console.kafka import KafkaConsoleSource
from agents.console.offer_source import RedisOfferSource
from agents.console.sampler import Sampler, history_of
from agents.console.sources import metrics_urls
from app.connections import kafka_client_kwargs, redis_client
from app.console.charts import Line, bar_chart, interval_bars, line_chart, minutes_ago
from app.console.feeds import (
    POSTERIOR_MEAN,
    KafkaSource,
    MemoryKafkaSource,
    MemoryOfferSource,
    OfferData,
    OfferSource,
    Sampled,
)
from app.console.history import History, key, label_values
from app.console.lift import lift_table
from app.console.offers import COLUMNS, OfferRow, offer_rows, page_of, sort_key, sorted_rows
from app.console.overview import (
    APPLIED,
    DEAD_LETTERED,
    RECEIVED,
    SENT_BY_GROUP,
    SENT_BY_OFFER,
    WINDOWS,
    overview,
)
from app.console.sources import LiftSource
from app.core.exploration import ExplorationConfig
from app.settings import Settings
from app.storage.offer_stats import OfferStatsConfig, RedisOfferStatsStore

HOUR_S = 3600.0
MAX_OFFER_ID_CHARS = 200
CHART_CACHE = 64
PNG = "image/png"


class Renderer(Protocol):
    def render(self, name: str, status: int = 200, **context: object) -> web.Response: ...


def default_sampled() -> Sampled:
    """An empty history of an hour at 10-second samples (the twin's; production sizes it
    from the settings, :func:`agents.console.sampler.history_of`)."""
    return Sampled(History(362))


@dataclass
class Monitor:
    """The parts behind the Overview and Offers pages: the sampled worker counters, the
    broker, the offer statistics, the exploration prior of the workers."""

    sampled: Sampled = field(default_factory=default_sampled)
    kafka: KafkaSource = field(default_factory=MemoryKafkaSource)
    offers: OfferSource = field(default_factory=MemoryOfferSource)
    exploration: ExplorationConfig = field(default_factory=ExplorationConfig)
    clock: Callable[[], float] = time.time
    sampler: Sampler | None = None
    """Feeds ``sampled`` while the application is served (none: the history stays as given)."""
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    """Run when the application stops (clients to close)."""
    _charts: dict[tuple[str, float], bytes] = field(default_factory=dict, repr=False)
    _drawing: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    _all_rows: tuple[OfferData, float, list[OfferRow]] | None = field(default=None, repr=False)

    async def background(self, app: web.Application) -> AsyncIterator[None]:
        """aiohttp cleanup context: the sampler runs while the application is served."""
        task = asyncio.create_task(self.sampler.run()) if self.sampler is not None else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if self.sampler is not None:
                await self.sampler.close()
            for close in self.closers:
                await close()

    # --- pages ---------------------------------------------------------------------------
    async def overview_page(self, page: Renderer, client: str) -> web.Response:
        view = overview(self.sampled.history, self.sampled.workers, await self.kafka.kafka_view())
        return page.render(
            "overview.html",
            current="overview",
            client=client,
            view=view,
            now_s=self.clock(),
            samples=len(self.sampled.history),
            asked=[seconds for _, seconds in WINDOWS],
        )

    async def _rows(self, only: str | None = None) -> tuple[list[OfferRow], str | None, int]:
        """Every offer's row, or only that of offer ``only`` (if it has one); every row is
        kept until the offer data or the history change (sorting and paging a large
        catalogue do not build the rows again)."""
        data = await self.offers.offer_data()
        history = self.sampled.history
        stamp = history.latest.t_s if history.latest is not None else 0.0
        kept = self._all_rows
        if only is None and kept is not None and kept[0] is data and kept[1] == stamp:
            return kept[2], data.error, data.partitions
        by_offer = label_values(history.series(), SENT_BY_OFFER, "offer")
        sent = self.sampled.current(SENT_BY_OFFER, "offer")
        titles, stats = data.titles, data.stats
        if only is not None:
            by_offer = {o: ks for o, ks in by_offer.items() if o == only}
            sent = {o: n for o, n in sent.items() if o == only}
            titles = {o: t for o, t in titles.items() if o == only}
            stats = {o: st for o, st in stats.items() if o == only}
        hour = {o: w.increase for o, w in history.windows_by(by_offer, HOUR_S).items()}
        now_ms = int(self.clock() * 1000)
        rows = offer_rows(titles, stats, sent, hour, now_ms, self.exploration)
        if only is None:
            self._all_rows = (data, stamp, rows)
        return rows, data.error, data.partitions

    async def offers_page(self, page: Renderer, client: str, query: dict[str, str]) -> web.Response:
        column, direction = sort_key(query.get("sort", ""), query.get("dir", ""))
        rows, error, partitions = await self._rows()
        shown = page_of(sorted_rows(rows, column, direction), query.get("page", "1"))
        return page.render(
            "offers.html",
            current="offers",
            client=client,
            rows=shown.rows,
            page=shown,
            columns=COLUMNS,
            sort=column,
            dir=direction,
            error=error,
            partitions=partitions,
            prior=self.exploration,
        )

    async def offer_page(self, page: Renderer, client: str, offer_id: str) -> web.Response:
        if len(offer_id) > MAX_OFFER_ID_CHARS:
            raise web.HTTPNotFound(text="no such offer")
        rows, error, partitions = await self._rows(only=offer_id)
        if not rows:
            raise web.HTTPNotFound(text="no such offer")
        row = rows[0]
        return page.render(
            "offer.html",
            current="offers",
            client=client,
            row=row,
            error=error,
            partitions=partitions,
            posteriors=self.sampled.posteriors is not None,
        )

    # --- charts --------------------------------------------------------------------------
    async def _cached(self, name: str, stamp: float, draw: Callable[[], bytes]) -> web.Response:
        cache_key = (name, stamp)
        body = self._charts.get(cache_key)
        if body is None:
            async with self._drawing:
                body = await asyncio.to_thread(draw)
            if len(self._charts) >= CHART_CACHE:
                self._charts.clear()
            self._charts[cache_key] = body
        return web.Response(body=body, content_type=PNG)

    def _stamp(self) -> float:
        latest = self.sampled.history.latest
        return latest.t_s if latest is not None else 0.0

    async def events_chart(self) -> web.Response:
        history = self.sampled.history
        now = self._stamp()

        def draw() -> bytes:
            lines = [
                Line(label, minutes_ago(history.rates(ks, HOUR_S), now))
                for label, ks in (
                    ("received", [k for k in history.series() if k[0] == RECEIVED]),
                    ("applied", [k for k in history.series() if k[0] == APPLIED]),
                    ("dead-lettered", [k for k in history.series() if k[0] == DEAD_LETTERED]),
                )
            ]
            return line_chart(lines, "Events per second", "events / s")

        return await self._cached("events", now, draw)

    async def channels_chart(self) -> web.Response:
        history = self.sampled.history
        now = self._stamp()

        def draw() -> bytes:
            groups = label_values(history.series(), SENT_BY_GROUP, "channel")
            lines = [
                Line(channel, minutes_ago([(t, 60 * r) for t, r in history.rates(ks, HOUR_S)], now))
                for channel, ks in sorted(groups.items())
            ]
            return line_chart(lines, "Offers sent per channel", "messages / min")

        return await self._cached("channels", now, draw)

    async def offer_chart(self, offer_id: str) -> web.Response:
        if len(offer_id) > MAX_OFFER_ID_CHARS:
            raise web.HTTPNotFound()
        history = self.sampled.history
        now = self._stamp()
        series = key(SENT_BY_OFFER, offer=offer_id)

        def draw() -> bytes:
            points = [(t, 60 * r) for t, r in history.rates([series], HOUR_S)]
            line = Line("sent", minutes_ago(points, now))
            return line_chart([line], f"Messages carrying {offer_id[:40]}", "messages / min")

        return await self._cached(f"offer:{offer_id}", now, draw)

    async def posterior_chart(self, offer_id: str) -> web.Response:
        history = self.sampled.posteriors
        if history is None or len(offer_id) > MAX_OFFER_ID_CHARS:
            raise web.HTTPNotFound()
        latest = history.latest
        now = latest.t_s if latest is not None else 0.0
        series = key(POSTERIOR_MEAN, offer=offer_id)

        def draw() -> bytes:
            points = [(t, 100 * m) for t, m in history.points(series, HOUR_S)]
            line = Line("posterior mean", minutes_ago(points, now))
            return line_chart([line], f"Posterior mean of {offer_id[:40]}", "%")

        return await self._cached(f"posterior:{offer_id}", now, draw)

    async def lift_chart(self, lift: LiftSource) -> web.Response:
        counts = await lift.lift_counts()
        rows = lift_table(counts.channels, counts.days_observed)
        bars = interval_bars(rows)
        stamp = hash(tuple(bars))

        def draw() -> bytes:
            return bar_chart(bars, "Acceptance rate with 95 % interval", "accepted / sent, %")

        return await self._cached("lift", float(stamp), draw)


def production_monitor(settings: Settings) -> Monitor:
    """The Monitor of ``settings``: the sampler of the workers' /metrics, the broker and the
    Redis offer statistics (no network until served)."""
    kwargs = kafka_client_kwargs(settings)
    sampled = Sampled(history_of(settings), posteriors=history_of(settings, gauges=True))
    redis = redis_client(settings)
    store = RedisOfferStatsStore(
        redis,
        OfferStatsConfig(
            half_life_ms=int(settings.offer_stats_half_life_s * 1000),
            ttl_s=settings.user_ttl_s,
            prefix=settings.redis_prefix,
        ),
    )
    offers = RedisOfferSource(
        store,
        settings.topic_user_events,
        settings.user_events_partitions,
        settings.topic_offer_catalog,
        kwargs,
    )
    # the workers' prior (ExplorationConfig's defaults) and half-life (pipeline_config)
    exploration = ExplorationConfig(half_life_ms=int(settings.offer_stats_half_life_s * 1000))
    sampler = Sampler(
        metrics_urls(settings),
        sampled,
        settings.console_sample_s,
        offers=offers,
        exploration=exploration,
    )
    return Monitor(
        sampled,
        KafkaConsoleSource.of(settings, kwargs),
        offers,
        exploration,
        sampler=sampler,
        closers=[redis.aclose],
    )
