"""The console's sampler against a worker-like /metrics endpoint: counters folded into the
history, the silent worker named."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import generate_latest

from agents.console.sampler import Sampler
from agents.metrics import WorkerMetrics
from app.console.feeds import POSTERIOR_MEAN, MemoryOfferSource, OfferData, Sampled
from app.console.history import History, key
from app.console.overview import RECEIVED
from app.core.exploration import OfferStats
from app.pipeline.stats import BatchStats

pytestmark = pytest.mark.agents


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_each_round_folds_the_workers_counters_in_and_names_the_silent_one() -> None:
    metrics = WorkerMetrics()

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry), content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", serve)
    server = TestServer(app)
    await server.start_server()
    live = f"http://127.0.0.1:{server.port}/metrics"
    silent = f"http://127.0.0.1:{closed_port()}/metrics"
    now = [100.0]
    sampled = Sampled(History(10))
    sampler = Sampler([live, silent], sampled, 10.0, clock=lambda: now[0])
    try:
        metrics.record_batch(BatchStats(received=5), 0.01)
        await sampler.sample_once()
        metrics.record_batch(BatchStats(received=20), 0.01)
        now[0] += 10
        await sampler.sample_once()
    finally:
        await sampler.close()
        await server.close()

    window = sampled.history.window(key(RECEIVED), 3600.0)
    assert (window.increase, window.per_s) == (20.0, 2.0)
    assert [(w.url, w.alive) for w in sampled.workers] == [(live, True), (silent, False)]
    assert sampled.workers[0].last_batch_s > 0
    assert sampled.current(RECEIVED, "") == {"": 25.0}


async def test_each_round_records_every_offers_posterior_mean() -> None:
    stats = {"o1": OfferStats(90.0, 9.0, 0.0, 100_000)}
    offers = MemoryOfferSource(OfferData(stats, {}, 4))
    sampled = Sampled(History(10), posteriors=History(10, gauges=True))
    sampler = Sampler([], sampled, 10.0, clock=lambda: 100.0, offers=offers)
    try:
        await sampler.sample_once()
    finally:
        await sampler.close()
    assert sampled.posteriors is not None
    # Beta(1 + 9, 9 + 81): mean 0.1
    points = sampled.posteriors.points(key(POSTERIOR_MEAN, offer="o1"), 60.0)
    assert points == [(100.0, pytest.approx(0.1))]


async def test_a_cancellation_a_library_turned_into_its_own_error_still_ends_the_sampler() -> None:
    sampled = Sampled(History(64))
    sampler = Sampler([], sampled, 10.0)
    entered = asyncio.Event()

    async def swallowing_round() -> None:  # as a client library that converts cancellation
        entered.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            raise OSError("connection closed") from None

    sampler.sample_once = swallowing_round  # type: ignore[method-assign]
    task = asyncio.create_task(sampler.run())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5.0)
