"""The console's production sources against a real worker, broker and Redis: the sampler
reads the worker's new counters (sends by channel, feedback by channel), the lag falls to 0
once the worker has committed, a record that is not JSON shows as a dead letter, and the
offer statistics and titles are those the worker wrote and reads."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from agents.console.kafka import CACHE_S, KafkaConsoleSource
from agents.console.monitor import production_monitor
from app.connections import kafka_client_kwargs
from app.console.history import key
from app.console.overview import RECEIVED, SENT_BY_GROUP, KafkaView
from app.console.sources import worker_counts
from tests.integration.test_privacy_requests import catalogue, event
from tests.support.barrier import markers_applied, produce_markers
from tests.support.kafka_io import as_json, create_topics_with_catalogue, produce
from tests.support.waiting import wait_for
from tests.support.worker import WorkerEnv, WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def feedback(n: int, user: str, kind: str) -> tuple[bytes, bytes]:
    body = {"event_id": f"f{n}", "user_id": user, "type": kind, "offer_id": "o0",
            "channel": "web", "ts": int(time.time() * 1000)}  # fmt: skip
    return user.encode(), as_json(body)


async def test_the_console_reads_a_real_workers_counters_lag_dead_letters_and_offers(
    kafka_bootstrap: str,
    redis_url: str,
    redis_client: aioredis.Redis,
    unique: Callable[[str], str],
    tmp_path: Path,
) -> None:
    env = WorkerEnv(kafka_bootstrap, redis_url, unique("console-worker"), partitions=2)
    s = env.settings()
    await create_topics_with_catalogue(kafka_bootstrap, s, *catalogue())
    users = [f"u{n}-{env.token}" for n in range(3)]
    records = [event(f"e{n}", u, "i0") for n, u in enumerate(users)]
    records += [(users[0].encode(), b"{not json")]
    records += [feedback(1, users[1], "offer_impression"), feedback(2, users[1], "offer_accepted")]
    metrics_url = f"http://127.0.0.1:{env.web_port}/metrics"
    settings = s.model_copy(update={"console_metrics_urls": [metrics_url]})
    monitor = production_monitor(settings)
    assert monitor.sampler is not None
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        await monitor.sampler.sample_once()  # the baseline
        await produce(kafka_bootstrap, s.topic_user_events, records)
        markers = await produce_markers(kafka_bootstrap, s.topic_user_events, 2, env.token)
        assert await markers_applied(redis_client, markers), worker.tail()
        history = monitor.sampled.history
        sampler = monitor.sampler

        async def counted() -> bool:  # the worker counts a batch after committing it
            await sampler.sample_once()
            return history.window(key(RECEIVED), 3600.0).increase >= len(records) + 2

        assert await wait_for(counted, timeout_s=30), worker.tail()
        assert history.window(key(RECEIVED), 3600.0).increase == len(records) + 2
        channels = monitor.sampled.current(SENT_BY_GROUP, "channel")
        assert channels and set(channels) <= {"web", "in_app"}, channels
        assert [(w.url, w.alive) for w in monitor.sampled.workers] == [(metrics_url, True)]
        _, text = worker.get("/metrics")
        accepted = worker_counts(text.decode()).accepted
        assert accepted == {("personalised", "web"): 1.0}

        ticks = itertools.count(step=CACHE_S)  # every read asks the broker again
        kafka = KafkaConsoleSource(kafka_client_kwargs(s), s.app_id, s.topic_user_events,
                                   s.topic_dead_letters, 5, clock=lambda: next(ticks))  # fmt: skip
        seen: list[KafkaView] = []

        async def caught_up() -> bool:
            seen.append(await kafka.kafka_view())
            return seen[-1].total_lag == 0 and seen[-1].dead_letters.total == 1

        assert await wait_for(caught_up, timeout_s=30), seen[-1]
        view = seen[-1]
        assert [p.partition for p in view.lag] == [0, 1]
        assert [d.error_class for d in view.dead_letters.latest] == ["InvalidJson"]

        data = await monitor.offers.offer_data()
        assert data.error is None and data.titles["o0"] == "Offer 0"
        assert (data.stats["o0"].impressions, data.stats["o0"].accepts) == (1.0, 1.0)
        assert monitor.sampled.posteriors is not None
        assert monitor.sampled.posteriors.points(key("posterior_mean", offer="o0"), 60.0)
    finally:
        worker.stop()
        await monitor.sampler.close()
        for close in monitor.closers:
            await close()
