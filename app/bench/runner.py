"""``nbo bench``: pre-produce a workload, then drain it with the raw aiokafka passthrough, a faust
passthrough, the naive per-event version and the worker (at each catalogue size), all as child
processes on the same broker, topic and messages; then the worker again while a client
hammers ``nbo api`` beside it (the lookups must not slow the stream: compared with a drain
beside the same idle ``nbo api`` just before); then latency at 50% of the worker's measured
peak for the worker and the raw passthrough at the same rate. Prints a table, writes JSON
(``--json``).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from app.bench.flood import LookupFlood
from app.bench.measure import (
    OutputRecorder,
    compact_aof,
    delete_prefix,
    latencies,
    percentiles,
    produce_at_rate,
    redis_aof_rewrites,
    redis_command_calls,
    redis_cpu_seconds,
    run_child,
    wait_carts_fired,
)
from app.bench.workload import SPAN_MS, Workload, WorkloadSpec, build_workload
from app.chaos.kafka_state import committed_offsets
from app.commands.child_worker import ChildWorker
from app.commands.kafka_io import keyed_json, send_all
from app.commands.tokens import create_client
from app.core.access import Scope
from app.settings import Settings, kafka_bootstrap_or_local, redis_url_or_local
from app.topics import TopicSpec, delete_topics_with_prefix, ensure_topics

PARTITIONS = 12
SIDE_TOPICS = {
    "NBO_TOPIC_DECISIONS": "decisions",
    "NBO_TOPIC_USER_CONSENT": "consent",
    "NBO_TOPIC_PRIVACY_REQUESTS": "privacy",
    "NBO_TOPIC_PRIVACY_AUDIT": "audit",
    "NBO_TOPIC_ITEM_NEIGHBOURS": "neighbours",
}
"""The worker's topics besides events, catalogues and offers: one per run."""
FLOOD_RUN = "-flood"
"""The drain under a lookup flood: its own consumer group and Redis prefix."""
CALM_RUN = "-calm"
"""The same drain beside an idle ``nbo api``, just before it: the flood's baseline."""
FLOOD_THREADS = 4
"""Connections the flooding client hammers ``nbo api`` on, back to back."""


@dataclass(frozen=True)
class BenchOptions:
    """Sizes and durations (defaults from the issue; ``quick()`` for a run under two minutes)."""

    events: int = 200_000
    users: int = 10_000
    offer_sizes: tuple[int, ...] = (1_000, 10_000, 100_000)
    batch_size: int = 500
    naive_max_events: int = 20_000
    naive_budget_s: float = 30.0
    latency_s: float = 10.0
    dim: int = 64

    @classmethod
    def quick(cls) -> BenchOptions:
        return cls(events=20_000, users=2_000, offer_sizes=(1_000, 10_000),
                   naive_max_events=3_000, naive_budget_s=8.0, latency_s=4.0)  # fmt: skip


def _machine() -> dict[str, Any]:
    libs = ["faust-streaming", "aiokafka", "redis", "hiredis", "numpy", "pydantic"]
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": {name: metadata.version(name) for name in libs},
    }


class Bench:
    """One benchmark run (see module doc)."""

    def __init__(self, settings: Settings, options: BenchOptions) -> None:
        self.settings = settings
        self.options = options
        self.bootstrap = kafka_bootstrap_or_local(settings)
        self.redis_url = redis_url_or_local(settings)
        self.token = f"bench-{uuid.uuid4().hex[:8]}"
        self.events_topic = f"{self.token}-events"
        self.items_topic = f"{self.token}-items"
        self.log_dir = settings.stack_dir / "bench" / self.token

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "NBO_KAFKA_BOOTSTRAP": self.bootstrap,
            "NBO_REDIS_URL": self.redis_url,
            "NBO_TOPIC_USER_EVENTS": self.events_topic,
            "NBO_TOPIC_ITEM_CATALOG": self.items_topic,
            "NBO_DECLARE_TOPICS": "false",
            # the worker's other topics, per run too (created by prepare)
            **{var: f"{self.token}-{name}" for var, name in SIDE_TOPICS.items()},
            "NBO_BATCH_SIZE": str(self.options.batch_size),
            "NBO_VECTOR_DIM": str(self.options.dim),
            **extra,
        }

    async def prepare(self, workload: Workload) -> None:
        sizes = self.options.offer_sizes
        specs = [
            TopicSpec(self.events_topic, PARTITIONS, {}),
            TopicSpec(self.items_topic, 1, {"cleanup.policy": "compact"}),
            TopicSpec(f"{self.token}-raw-out", PARTITIONS, {}),
            TopicSpec(f"{self.token}-faust-out", PARTITIONS, {}),
            TopicSpec(f"{self.token}-raw-lat", PARTITIONS, {}),
            TopicSpec(f"{self.token}-raw-lat-out", PARTITIONS, {}),
            TopicSpec(f"{self.token}-dlq", PARTITIONS, {}),
            *(TopicSpec(f"{self.token}-offers-{n}", 1, {}) for n in sizes),
            *(TopicSpec(f"{self.token}-nbo-{n}", PARTITIONS, {}) for n in sizes),
            TopicSpec(f"{self.token}-nbo-naive", PARTITIONS, {}),
            *(TopicSpec(f"{self.token}-{name}", PARTITIONS, {}) for name in SIDE_TOPICS.values()),
        ]
        await ensure_topics(self.bootstrap, specs)
        await send_all(self.bootstrap, self.items_topic, keyed_json(workload.items, "item_id"),
                       total=len(workload.items), description="items")  # fmt: skip
        for n in sizes:
            await send_all(self.bootstrap, f"{self.token}-offers-{n}",
                           keyed_json(workload.offers[:n], "offer_id"), total=n,
                           description=f"offers {n}")  # fmt: skip
        await send_all(self.bootstrap, self.events_topic, workload.events,
                       total=len(workload.events), description="events")  # fmt: skip

    def passthrough_drain(self, module: str, name: str, n: int) -> dict[str, Any]:
        """Drain ``n`` events with the passthrough ``module`` (``app.bench.raw`` or
        ``agents.faust_passthrough``) into its own sink topic and group ``name``."""
        run = run_child(
            module,
            ["--bootstrap", self.bootstrap, "--source", self.events_topic,
             "--sink", f"{self.token}-{name}-out", "--group", f"{self.token}-{name}",
             "--expect", str(n), "--batch", str(self.options.batch_size)],
            self.env(),
        )  # fmt: skip
        return _drain_figures(run.result, run.cpu_s, run.peak_rss)

    def naive_drain(self) -> dict[str, Any]:
        n = min(self.options.naive_max_events, self.options.events)
        env = self.env(
            NBO_TOPIC_OFFER_CATALOG=f"{self.token}-offers-{self.options.offer_sizes[0]}",
            NBO_TOPIC_OFFERS=f"{self.token}-nbo-naive",
            NBO_TOPIC_DEAD_LETTERS=f"{self.token}-dlq",
            NBO_REDIS_PREFIX=f"{self.token}-naive",
        )
        run = run_child(
            "app.bench.naive",
            ["--bootstrap", self.bootstrap, "--group", f"{self.token}-naive",
             "--expect", str(n), "--budget-s", str(self.options.naive_budget_s)],
            env,
        )  # fmt: skip
        return _drain_figures(run.result, run.cpu_s, run.peak_rss)

    def worker_env(self, offers: int, run: str = "") -> dict[str, str]:
        """The environment of a worker (and of ``nbo api`` beside it) on ``offers`` offers;
        ``run`` names a separate drain (its own group and Redis prefix)."""
        return self.env(
            NBO_APP_ID=f"{self.token}-worker-{offers}{run}",
            NBO_TOPIC_OFFER_CATALOG=f"{self.token}-offers-{offers}",
            NBO_TOPIC_OFFERS=f"{self.token}-nbo-{offers}",
            NBO_TOPIC_DEAD_LETTERS=f"{self.token}-dlq",
            NBO_REDIS_PREFIX=f"{self.token}-{offers}{run}",
            NBO_WEB_PORT=str(self.settings.web_port + 1),
        )

    def start_worker(self, offers: int, run: str = "") -> ChildWorker:
        worker = ChildWorker(
            self.worker_env(offers, run),
            self.settings.web_port + 1,
            self.log_dir / f"worker-{offers}{run}.log",
        )
        worker.wait_ready(timeout_s=120)
        return worker

    async def lookup_drain(self, n: int, offers: int, *, flood: bool) -> dict[str, Any]:
        """:meth:`worker_drain` of a fresh worker (own group and Redis prefix) beside a running
        ``nbo api``, with ``flood``: while a client hammers it on :data:`FLOOD_THREADS`
        connections (:class:`~app.bench.flood.LookupFlood`); without: the same, no client."""
        run = FLOOD_RUN if flood else CALM_RUN
        tokens = self.log_dir / "api-tokens"
        tokens.unlink(missing_ok=True)
        token = create_client(tokens, "flood", [Scope.OFFERS])
        api_port, metrics_port = self.settings.web_port + 2, self.settings.web_port + 3
        env = {
            **self.worker_env(offers, run),
            "NBO_API_TOKENS_FILE": str(tokens),
            "NBO_API_PORT": str(api_port),
            "NBO_API_METRICS_PORT": str(metrics_port),
        }
        api = ChildWorker(
            env, api_port, self.log_dir / f"api{run}.log", api_token=token, command=("api",)
        )
        try:
            api.wait_ready(timeout_s=120)
            url = f"http://127.0.0.1:{api_port}/users/u-1/offers"
            client = LookupFlood(url, token, threads=FLOOD_THREADS) if flood else None
            if client is not None:
                client.start()
            try:
                worker = self.start_worker(offers, run)
                try:
                    figures = await self.worker_drain(worker, n, offers, run)
                finally:
                    worker.stop()
            finally:
                if client is not None:
                    figures["flood"] = client.stop()
        finally:
            api.stop()
        return figures

    async def worker_drain(
        self, worker: ChildWorker, n: int, offers: int, run: str = ""
    ) -> dict[str, Any]:
        calls_before = await redis_command_calls(self.redis_url)
        redis_cpu_before = await redis_cpu_seconds(self.redis_url)
        committed = 0
        deadline = time.time() + 600
        # the worker times its own first and last batch (as the passthroughs do); its end is
        # seen at the broker, in the offsets its group committed, not by scraping /metrics
        # every 0.5 s (that cost the worker ~3 % of its time; Prometheus scrapes every 15 s+)
        group = self.worker_env(offers, run)["NBO_APP_ID"]
        while committed < n and time.time() < deadline:
            await asyncio.sleep(0.5)
            offsets = await committed_offsets(self.bootstrap, group, self.events_topic)
            committed = sum((offsets or {}).values())
        if committed < n:
            raise RuntimeError(f"the worker committed {committed} of {n}:\n{worker.tail()}")
        metrics = worker.metrics()
        first = metrics["nbo_first_batch_started_seconds"]
        done = metrics["nbo_last_batch_done_seconds"]
        batches = metrics.get("nbo_batch_seconds_count", 0.0)
        calls = await redis_command_calls(self.redis_url) - calls_before
        redis_cpu = await redis_cpu_seconds(self.redis_url) - redis_cpu_before
        figures = _drain_figures(
            {"count": n, "first_ms": first * 1000, "done_ms": done * 1000},
            worker.cpu_seconds(),
            worker.peak_rss_bytes(),
        )
        figures.update(
            offers=offers,
            batch_size=self.options.batch_size,
            redis_round_trips_per_event=metrics.get("nbo_store_round_trips", 0.0) / n,
            batches=int(batches),
            store_conflicts=int(metrics.get("nbo_store_conflicts", 0.0)),
            cart_decisions=int(metrics.get("nbo_cart_decisions", 0.0)),
            mean_batch=n / batches if batches else 0.0,
            redis_round_trips_per_batch=(
                metrics.get("nbo_store_round_trips", 0.0) / batches if batches else 0.0
            ),
            redis_commands_per_event=calls / n,
            redis_cpu_us_per_event=redis_cpu / n * 1e6,
            offers_published=int(metrics.get("nbo_offers_published", 0)),
            events_applied=int(metrics.get("nbo_events_applied", 0)),
            dead_lettered=int(
                sum(v for k, v in metrics.items() if k.startswith("nbo_events_dead_lettered{"))
            ),
            phase_s={
                key.split('"')[1]: round(value, 3)
                for key, value in metrics.items()
                if key.startswith("nbo_batch_phase_seconds{")
            },
            catalogue_matrix_mb=offers * self.options.dim * 4 / 1e6,
        )
        return figures

    async def latency(self, workload: Workload, rate: float) -> dict[str, Any]:
        count = int(rate * self.options.latency_s)
        docs = [(k, json.loads(v)) for k, v in workload.events[:count]]
        offers = self.options.offer_sizes[0]
        worker = self.start_worker(offers)  # the same group: resumes after the drained events
        try:
            # the cart timers of the drained events are all due (their event times are in the
            # past): the worker fires them at its first polls, before the window measured
            prefix = self.worker_env(offers)["NBO_REDIS_PREFIX"]
            carts = await wait_carts_fired(
                self.redis_url, prefix, self.events_topic, PARTITIONS, 300
            )
            # the drains grew Redis's AOF: rewrite it now, not by itself inside the window
            compacted = await compact_aof(self.redis_url)
            recorder = OutputRecorder(self.bootstrap, f"{self.token}-nbo-{offers}")
            await recorder.start()
            events = [(k, {**d, "event_id": f"lat-{i}"}) for i, (k, d) in enumerate(docs)]
            redis_cpu_before = await redis_cpu_seconds(self.redis_url)
            rewrites_before = await redis_aof_rewrites(self.redis_url)
            sent = await produce_at_rate(self.bootstrap, self.events_topic, events, rate)
            await recorder.stop()
            redis_cpu = await redis_cpu_seconds(self.redis_url) - redis_cpu_before
            # a rewrite in the window steals a core from the worker on a shared machine
            rewrites = await redis_aof_rewrites(self.redis_url) - rewrites_before
        finally:
            worker.stop()
        pipeline = percentiles(latencies(recorder.records, sent, "trigger.event_id"))
        raw_events = [(k, {**d, "event_id": f"raw-{i}"}) for i, (k, d) in enumerate(docs)]
        raw = await self._raw_latency(raw_events, rate)
        return {"rate_per_s": rate, "events": count, "pipeline_ms": pipeline, "raw_ms": raw,
                "redis_cpu_us_per_event": redis_cpu / count * 1e6 if count else 0.0,
                "backlog_carts": carts[0], "backlog_carts_left": carts[1],
                "backlog_carts_s": carts[2], "redis_aof_rewrites": rewrites,
                "redis_aof_compacted_before": compacted}  # fmt: skip

    async def _raw_latency(
        self, events: list[tuple[bytes, dict[str, Any]]], rate: float
    ) -> dict[str, float]:
        args = ["--bootstrap", self.bootstrap, "--source", f"{self.token}-raw-lat",
                "--sink", f"{self.token}-raw-lat-out", "--group", f"{self.token}-raw-lat",
                "--batch", str(self.options.batch_size)]  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app.bench.raw", *args, env=self.env(),
            stdout=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            await asyncio.sleep(3)  # join the group before the load starts
            recorder = OutputRecorder(self.bootstrap, f"{self.token}-raw-lat-out")
            await recorder.start()
            sent = await produce_at_rate(self.bootstrap, f"{self.token}-raw-lat", events, rate)
            await recorder.stop()
        finally:
            proc.terminate()
            await proc.wait()
        return percentiles(latencies(recorder.records, sent, "event_id"))

    async def cleanup(self) -> None:
        """Delete the run's topics and Redis keys: a long-lived broker would otherwise keep
        every run's ~300 partitions and copies of its events (the local broker's 512 MB heap
        ran out after a few dozen runs)."""
        await delete_topics_with_prefix(self.bootstrap, f"{self.token}-")
        await delete_prefix(self.redis_url, f"{self.token}-naive")
        for run in (CALM_RUN, FLOOD_RUN):
            await delete_prefix(self.redis_url, f"{self.token}-{self.options.offer_sizes[0]}{run}")
        for n in self.options.offer_sizes:
            await delete_prefix(self.redis_url, f"{self.token}-{n}")


def _drain_figures(result: dict[str, Any], cpu_s: float, peak_rss: int) -> dict[str, Any]:
    count = int(result["count"])
    seconds = max((result["done_ms"] - result["first_ms"]) / 1000, 1e-9)
    return {
        "events": count,
        "seconds": seconds,
        "events_per_s": count / seconds,
        "cpu_s_per_1k_events": cpu_s / count * 1000 if count else float("nan"),
        "peak_rss_mb": peak_rss / 1e6,
    }


def run_bench(settings: Settings, options: BenchOptions, json_path: Path | None) -> dict[str, Any]:
    """Run the whole benchmark; returns the report (also printed, and written to json_path)."""
    bench = Bench(settings, options)
    start_ms = int(time.time() * 1000) - SPAN_MS  # every event in the past: none dead-lettered
    max_offers = max(options.offer_sizes)
    workload = build_workload(
        WorkloadSpec(events=options.events, users=options.users, offers=max_offers), start_ms
    )
    print(
        f"== workload: {options.events:,} events ({workload.mean_event_bytes:.0f} B mean) "
        f"over {options.users:,} users; offers {list(options.offer_sizes)}; D={options.dim}"
    )
    asyncio.run(bench.prepare(workload))
    report: dict[str, Any] = {"machine": _machine(), "options": asdict(options)}
    try:
        print("== raw aiokafka passthrough (ceiling)")
        report["raw"] = bench.passthrough_drain("app.bench.raw", "raw", options.events)
        print("== faust passthrough (the framework's ceiling)")
        report["faust"] = bench.passthrough_drain(
            "agents.faust_passthrough", "faust", options.events
        )
        print("== naive per-event version")
        report["naive"] = bench.naive_drain()
        report["pipeline"] = {}
        for n in options.offer_sizes:
            print(f"== worker, {n:,} offers")
            started = time.monotonic()
            worker = bench.start_worker(n)
            ready_s = time.monotonic() - started  # started, catalogue read, partitions owned
            try:
                report["pipeline"][str(n)] = asyncio.run(
                    bench.worker_drain(worker, options.events, n)
                )
            finally:
                worker.stop()
            report["pipeline"][str(n)]["ready_s"] = ready_s
        first = options.offer_sizes[0]
        print(f"== worker, {first:,} offers, beside nbo api: idle, then hammered by a client")
        report["lookup_calm"] = asyncio.run(bench.lookup_drain(options.events, first, flood=False))
        report["lookup_flood"] = asyncio.run(bench.lookup_drain(options.events, first, flood=True))
        rate = 0.5 * report["pipeline"][str(options.offer_sizes[0])]["events_per_s"]
        print(f"== latency at {rate:,.0f} events/s (50% of the worker's peak)")
        report["latency"] = asyncio.run(bench.latency(workload, rate))
    finally:
        asyncio.run(bench.cleanup())
    report["ratios"] = _ratios(report, options)
    print(render(report))
    if json_path is not None:
        json_path.write_text(json.dumps(report, indent=2))
        print(f"\nwritten to {json_path}")
    return report


def _ratios(report: dict[str, Any], options: BenchOptions) -> dict[str, float]:
    raw = report["raw"]["events_per_s"]
    pipe = report["pipeline"]
    first = pipe[str(options.offer_sizes[0])]
    faust = report["faust"]["events_per_s"]
    ratios: dict[str, float] = {}
    for ceiling, per_s in (("raw", raw), ("faust", faust)):  # vs faust: the part that is ours
        ratios |= {f"throughput_vs_{ceiling}_{_size(int(n))}": pipe[n]["events_per_s"] / per_s
                   for n in pipe}  # fmt: skip
    ratios["faust_vs_raw"] = faust / raw
    ratios["throughput_vs_naive"] = first["events_per_s"] / report["naive"]["events_per_s"]
    ratios["redis_calls_per_event_times_batch"] = (
        first["redis_round_trips_per_event"] * options.batch_size
    )
    # the same with the batch size in use (faust hands over what arrived within the wait)
    ratios["redis_round_trips_per_batch"] = first.get("redis_round_trips_per_batch", 0.0)
    lat = report["latency"]
    ratios["p99_vs_raw"] = lat["pipeline_ms"]["p99"] / lat["raw_ms"]["p99"]
    # the stream's rate while a client hammers the lookups, against its rate beside the same
    # idle nbo api just before (the pair differs only in the flood)
    ratios["throughput_under_lookup_flood"] = (
        report["lookup_flood"]["events_per_s"] / report["lookup_calm"]["events_per_s"]
    )
    return ratios


def _size(n: int) -> str:
    """1000 -> "1k", 10000 -> "10k", 250 -> "250"."""
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def render(report: dict[str, Any]) -> str:
    """The terminal table."""
    lines = ["", f"{'run':<22}{'events/s':>12}{'CPU s/1k':>10}{'peak MB':>9}{'RT/event':>10}"
             f"{'batch':>7}{'Redis us/ev':>12}"]  # fmt: skip
    rows = [("raw passthrough", report["raw"]), ("faust passthrough", report["faust"]),
            ("naive per-event", report["naive"])]  # fmt: skip
    rows += [(f"worker {int(n):,} offers", v) for n, v in report["pipeline"].items()]
    rows.append(("worker, nbo api idle", report["lookup_calm"]))
    rows.append(("worker + lookup flood", report["lookup_flood"]))
    for name, r in rows:
        rt = r.get("redis_round_trips_per_event")
        batch = r.get("mean_batch")
        redis_us = r.get("redis_cpu_us_per_event")
        lines.append(
            f"{name:<22}{r['events_per_s']:>12,.0f}{r['cpu_s_per_1k_events']:>10.3f}"
            f"{r['peak_rss_mb']:>9.0f}{'' if rt is None else f'{rt:.4f}':>10}"
            f"{'' if batch is None else f'{batch:.0f}':>7}"
            f"{'' if redis_us is None else f'{redis_us:.1f}':>12}"
        )
    ready = [f"{_size(int(n))} {v['ready_s']:.1f} s" for n, v in report["pipeline"].items()
             if "ready_s" in v]  # fmt: skip
    if ready:
        lines.append("worker ready (catalogue read, partitions owned): " + ", ".join(ready))
    lat = report["latency"]
    lines.append(
        f"\nlatency at {lat['rate_per_s']:,.0f}/s   p50 / p95 / p99 ms"
        f"   (Redis CPU {lat.get('redis_cpu_us_per_event', 0.0):.1f} us per event, "
        f"{lat.get('redis_aof_rewrites', 0)} Redis AOF rewrites in the window"
        + ("; the AOF rewritten just before it" if lat.get("redis_aof_compacted_before") else "")
        + ")"
    )
    if "backlog_carts" in lat:
        lines.append(
            f"  (first, the drains' {lat['backlog_carts']:,} due cart timers fired in "
            f"{lat['backlog_carts_s']:.1f} s)"
        )
    for name in ("pipeline_ms", "raw_ms"):
        p = lat[name]
        lines.append(f"  {name[:-3]:<10} {p['p50']:8.1f} {p['p95']:8.1f} {p['p99']:8.1f}"
                     f"   ({p['samples']} samples)")  # fmt: skip
    flood = report["lookup_flood"]["flood"]
    lines.append(
        f"\nlookup flood: {flood['requests']:,} requests ({flood['requests_per_s']:,.0f}/s) "
        f"to nbo api during the drain, by status {flood['by_status']}"
    )
    lines.append("\nratios")
    lines += [f"  {k:<36} {v:8.3f}" for k, v in report["ratios"].items()]
    return "\n".join(lines)
