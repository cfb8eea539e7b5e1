"""``nbo chaos``: the reliability matrix. Faults injected into a real local stack and real
workers while sequence-numbered events flow; per scenario, events produced, applied, lost,
applied twice, dead-lettered, the time to recover and the worker restarts nobody asked for.

The run starts its own stack (``<stack dir>/chaos``, free ports: the developer's stack is never
touched) and removes it at the end. Each scenario has its own topics, consumer group, Redis
prefix and users (:mod:`app.chaos.scenario`). Pass means 0 lost, 0 applied twice, every poison
record dead-lettered and nothing else, no unasked worker restart, recovered within the time-out
and, for the soak, flat memory and latency (:mod:`app.chaos.ledger`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import platform
import signal
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import redis.asyncio as aioredis

from app.chaos.flow import ITEMS, event_record, send_acknowledged, start_producer
from app.chaos.kafka_state import committed_offsets, wait_committed, wait_end_offsets
from app.chaos.ledger import SoakRule, trend
from app.chaos.poison import poison_records, processing_poison_user
from app.chaos.scenario import ScenarioResult, Stage, StageConfig
from app.chaos.services import ChaosStack, RedisPair
from app.commands.child_worker import ChildWorker
from app.commands.kafka_io import keyed_json, send_all
from app.settings import Settings
from app.storage.keys import user_keys
from app.topics import TopicSpec, ensure_topics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChaosOptions:
    """Sizes and durations (defaults from the issue; :meth:`quick` for a smoke run)."""

    users: int = 300
    rate: float = 300.0
    settle_s: float = 5.0
    kills: int = 5
    broker_stop_s: float = 70.0
    redis_stop_s: float = 30.0
    redis_slow_s: float = 20.0
    redis_pause_ms: int = 2_000
    soak_s: float = 600.0
    soak_share: float = 0.7
    soak_users: int = 5_000
    peak_events: int = 40_000
    peak_load_s: float = 120.0
    recovery_timeout_s: float = 300.0
    session_timeout_s: float = 30.0
    heartbeat_interval_s: float = 3.0

    @classmethod
    def quick(cls) -> ChaosOptions:
        return cls(users=40, rate=100.0, settle_s=1.5, kills=2, broker_stop_s=6.0,
                   redis_stop_s=3.0, redis_slow_s=4.0, redis_pause_ms=1_000, soak_s=20.0,
                   soak_users=200, peak_events=2_000, peak_load_s=6.0, recovery_timeout_s=150.0,
                   session_timeout_s=6.0, heartbeat_interval_s=1.0)  # fmt: skip


Fault = Callable[["Chaos", Stage], Awaitable[ScenarioResult]]
SCENARIOS: dict[str, tuple[str, Fault]] = {}


def scenario(name: str, fault: str) -> Callable[[Fault], Fault]:
    def register(fn: Fault) -> Fault:
        SCENARIOS[name] = (fault, fn)
        return fn

    return register


class Chaos:
    """One run (see module doc)."""

    def __init__(self, settings: Settings, options: ChaosOptions) -> None:
        self.options = options
        self.run = f"chaos-{uuid.uuid4().hex[:6]}"
        self.stack = ChaosStack(settings)
        self.log_dir = settings.stack_dir.resolve() / "chaos-logs" / self.run
        self.items_topic = f"{self.run}-item-catalog"
        self.offers_topic = f"{self.run}-offer-catalog"

    def base_env(self) -> dict[str, str]:
        o, run = self.options, self.run
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("NBO_")},
            "NBO_KAFKA_BOOTSTRAP": self.stack.bootstrap,
            "NBO_DECLARE_TOPICS": "false",
            "NBO_TOPIC_ITEM_CATALOG": self.items_topic,
            "NBO_TOPIC_OFFER_CATALOG": self.offers_topic,
            **{
                f"NBO_TOPIC_{name.upper()}": f"{run}-{name}"
                for name in (
                    "offers",
                    "decisions",
                    "user_consent",
                    "privacy_requests",
                    "privacy_audit",
                    "item_neighbours",
                )
            },
            "NBO_SESSION_TIMEOUT_S": str(o.session_timeout_s),
            "NBO_HEARTBEAT_INTERVAL_S": str(o.heartbeat_interval_s),
            "NBO_HOLDOUT_SHARE": "0",
            "NBO_LOG_FORMAT": "text",
        }

    def check_topics_distinct(self) -> None:
        """Every topic a worker reads or writes is a different one (a worker reading its own
        output as a catalogue would spoil the run)."""
        names = [v for k, v in self.base_env().items() if k.startswith("NBO_TOPIC_")]
        if len(set(names)) != len(names):
            raise AssertionError(f"the chaos run's topics collide: {sorted(names)}")

    def stage_config(self) -> StageConfig:
        o = self.options
        return StageConfig(self.run, self.stack.bootstrap, self.stack.redis_url, self.log_dir,
                           self.base_env(), o.users, o.rate, o.settle_s,
                           o.recovery_timeout_s)  # fmt: skip

    async def prepare(self) -> None:
        """The run's shared topics and its catalogue."""
        self.check_topics_distinct()
        env = self.base_env()
        shared = [TopicSpec(self.items_topic, 1, {"cleanup.policy": "compact"}),
                  TopicSpec(self.offers_topic, 1, {"cleanup.policy": "compact"})]  # fmt: skip
        shared += [TopicSpec(env[v], 3, {}) for v in env
                   if v.startswith("NBO_TOPIC_") and env[v].startswith(self.run)
                   and env[v] not in (self.items_topic, self.offers_topic)]  # fmt: skip
        await ensure_topics(self.stack.bootstrap, shared)
        tags = ["drama", "comedy", "space", "kids", "action"]
        items = [{"item_id": f"i{n}", "tags": [tags[n % 5]]} for n in range(ITEMS)]
        offers = [{"offer_id": f"o{n}", "title": f"Offer {n}", "tags": [tags[n % 5]],
                   "value": 1.0 + n % 3, "channels": ["web", "in_app"]}
                  for n in range(10)]  # fmt: skip
        await send_all(self.stack.bootstrap, self.items_topic, keyed_json(items, "item_id"),
                       total=len(items), description="items", progress=False)  # fmt: skip
        await send_all(self.stack.bootstrap, self.offers_topic, keyed_json(offers, "offer_id"),
                       total=len(offers), description="offers", progress=False)  # fmt: skip


# --- worker faults -----------------------------------------------------------------------------


async def _worker_restarts(
    chaos: Chaos, stage: Stage, label: str, end: Callable[[ChildWorker], Awaitable[None]]
) -> ScenarioResult:
    """``end`` the worker and start a new one, ``kills`` times in a row."""

    async def fault() -> None:
        for _ in range(chaos.options.kills):
            await end(stage.pool.workers[0])
            await stage.pool.start(1)
            await asyncio.sleep(chaos.options.settle_s)

    return await stage.run(f"{label}, {chaos.options.kills} times", fault)


@scenario("worker-kill", "worker kill -9, 5 times in a row")
async def worker_kill(chaos: Chaos, stage: Stage) -> ScenarioResult:
    return await _worker_restarts(chaos, stage, "worker kill -9", stage.pool.kill)


@scenario("worker-term", "worker SIGTERM, 5 times in a row")
async def worker_term(chaos: Chaos, stage: Stage) -> ScenarioResult:
    return await _worker_restarts(chaos, stage, "worker SIGTERM", stage.pool.stop)


@scenario("join-leave", "a second and a third worker join, then leave")
async def join_leave(chaos: Chaos, stage: Stage) -> ScenarioResult:
    async def fault() -> None:
        settle = chaos.options.settle_s
        for _ in range(2):
            await stage.pool.start(1)
            await asyncio.sleep(settle)
        for _ in range(2):
            await stage.pool.stop(stage.pool.workers[-1])
            await asyncio.sleep(settle)

    return await stage.run("2nd and 3rd worker join, then leave", fault)


@scenario("scale", "scale from 1 to 3 workers and back")
async def scale(chaos: Chaos, stage: Stage) -> ScenarioResult:
    async def fault() -> None:
        await stage.pool.start(2)
        await asyncio.sleep(chaos.options.settle_s * 2)
        await asyncio.gather(*(stage.pool.stop(w) for w in stage.pool.workers[1:]))

    return await stage.run("scale 1 -> 3 -> 1 workers", fault)


# --- broker and Redis faults ------------------------------------------------------------------


async def _service_down(
    chaos: Chaos, stage: Stage, label: str, service: str, *, kill: bool, down_s: float = 0.0
) -> ScenarioResult:
    """``service`` ("kafka" or "redis") killed (SIGKILL) or stopped (SIGTERM), kept down for
    ``down_s``, then started again with its data."""

    async def fault() -> None:
        await asyncio.to_thread(chaos.stack.kill if kill else chaos.stack.stop, service)
        await asyncio.sleep(down_s)
        await asyncio.to_thread(chaos.stack.up)

    return await stage.run(label, fault)


@scenario("broker-stop", "broker stopped for 70 s, then restarted")
async def broker_stop(chaos: Chaos, stage: Stage) -> ScenarioResult:
    seconds = chaos.options.broker_stop_s
    label = f"broker stopped {seconds:.0f} s"
    return await _service_down(chaos, stage, label, "kafka", kill=False, down_s=seconds)


@scenario("broker-kill", "broker kill -9, restarted")
async def broker_kill(chaos: Chaos, stage: Stage) -> ScenarioResult:
    return await _service_down(chaos, stage, "broker kill -9, restarted", "kafka", kill=True)


@scenario("redis-kill", "Redis kill -9, restarted")
async def redis_kill(chaos: Chaos, stage: Stage) -> ScenarioResult:
    return await _service_down(chaos, stage, "Redis kill -9, restarted", "redis", kill=True)


@scenario("redis-stop", "Redis stopped for 30 s, then restarted")
async def redis_stop(chaos: Chaos, stage: Stage) -> ScenarioResult:
    seconds = chaos.options.redis_stop_s
    label = f"Redis stopped {seconds:.0f} s"
    return await _service_down(chaos, stage, label, "redis", kill=False, down_s=seconds)


@scenario("redis-slow", "Redis slowed: every command paused for seconds (CLIENT PAUSE)")
async def redis_slow(chaos: Chaos, stage: Stage) -> ScenarioResult:
    o = chaos.options

    async def fault() -> None:
        client = aioredis.Redis.from_url(stage.redis_url)
        try:
            deadline = time.monotonic() + o.redis_slow_s
            while time.monotonic() < deadline:
                await client.client_pause(o.redis_pause_ms, all=True)
                await asyncio.sleep(o.redis_pause_ms / 1000 + 0.1)
        finally:
            await client.aclose()

    return await stage.run(f"Redis paused {o.redis_pause_ms} ms at a time for "
                           f"{o.redis_slow_s:.0f} s", fault)  # fmt: skip


@scenario("redis-failover", "failover to a lagging replica (commits wait for it)")
async def redis_failover(chaos: Chaos, stage: Stage) -> ScenarioResult:
    pair = RedisPair(chaos.log_dir / "failover-redis")
    await asyncio.to_thread(pair.start)
    stage.use_redis(pair.url(pair.primary_port), NBO_REDIS_ACK_REPLICAS="1",
                    NBO_REDIS_ACK_TIMEOUT_MS="500")  # fmt: skip

    async def fault() -> None:
        pair.signal(pair.replica_port, signal.SIGSTOP)  # the replica falls behind
        await asyncio.sleep(chaos.options.settle_s)
        pair.signal(pair.primary_port, signal.SIGKILL)  # the primary dies
        pair.signal(pair.replica_port, signal.SIGCONT)
        await asyncio.to_thread(pair.promote_replica)  # the replica takes over
        # the workers are pointed at the new primary (a managed Redis moves its address)
        for worker in list(stage.pool.workers):
            await stage.pool.kill(worker)
        stage.use_redis(pair.url(pair.replica_port), NBO_REDIS_ACK_REPLICAS="0")
        await stage.pool.start(1)

    try:
        return await stage.run("failover to a stalled replica, WAIT on", fault)
    finally:
        pair.stop()


# --- poison ------------------------------------------------------------------------------------


@scenario("poison", "poison records of every kind among the events")
async def poison(chaos: Chaos, stage: Stage) -> ScenarioResult:
    records = poison_records(stage.token)
    stage.poison_keys = {r.key for r in records}
    client = aioredis.Redis.from_url(stage.redis_url)
    try:  # processing that user's event fails: the commit meets a key of the wrong type
        bad = user_keys(processing_poison_user(stage.token), stage.prefix).seen
        await client.set(bad, b"not a sorted set")
    finally:
        await client.aclose()

    async def fault() -> None:
        producer = await start_producer(chaos.stack.bootstrap)
        for record in records:  # one at a time, among the flowing events
            producer = await send_acknowledged(
                chaos.stack.bootstrap, producer, stage.events_topic, [(record.key, record.value)]
            )
            await asyncio.sleep(0.05)
        await producer.stop()

    return await stage.run(f"{len(records)} poison records", fault)


# --- soak --------------------------------------------------------------------------------------


@scenario("soak", "sustained 70 % of the measured peak; memory and latency must stay flat")
async def soak(chaos: Chaos, stage: Stage) -> ScenarioResult:
    o = chaos.options
    await stage.create_topics()
    prefill = [(u, event_record(f"{stage.token}-pre", u, n, n // len(stage.users)))
               for n, u in ((n, stage.users[n % len(stage.users)])
                            for n in range(o.peak_events))]  # fmt: skip
    producer = await start_producer(chaos.stack.bootstrap)
    for start in range(0, len(prefill), 2_000):
        chunk = prefill[start : start + 2_000]
        producer = await send_acknowledged(chaos.stack.bootstrap, producer, stage.events_topic,
                                           [r for _, r in chunk])  # fmt: skip
        for user, (_, value) in chunk:
            stage.produced.add(user, json.loads(value)["event_id"])
    await producer.stop()

    (worker,) = await stage.pool.start(1)
    target = await wait_end_offsets(chaos.stack.bootstrap, stage.events_topic, 60)
    assert target is not None
    await wait_committed(chaos.stack.bootstrap, stage.group, stage.events_topic, target,
                         o.recovery_timeout_s)  # fmt: skip
    metrics = await asyncio.to_thread(worker.metrics)
    busy = metrics["nbo_last_batch_done_seconds"] - metrics["nbo_first_batch_started_seconds"]
    idle_peak = o.peak_events / max(busy, 1e-3)
    # the load generator shares the cores: the peak that counts is the one measured while
    # it runs, offered more than the worker takes for peak_load_s
    loaded = await loaded_peak(chaos, stage, PEAK_OFFER_FACTOR * idle_peak, o.peak_load_s)
    peak = loaded.committed_per_s
    rate = o.soak_share * peak
    stage.notes.update(idle_peak_events_per_s=round(idle_peak), peak_events_per_s=round(peak),
                       peak_generated_events_per_s=round(loaded.generated_per_s),
                       peak_generator_bound=loaded.generator_bound,
                       soak_rate=round(rate))  # fmt: skip

    probes: list[tuple[float, float]] = []  # (time since the soak started, latency ms)
    rss: list[tuple[float, float]] = []
    stop = asyncio.Event()
    began = time.monotonic()

    async def probe() -> None:
        producer = await start_producer(chaos.stack.bootstrap)
        client = aioredis.Redis.from_url(stage.redis_url)
        n = 0
        try:
            while not stop.is_set():
                user = f"{stage.token}-probe{n}"
                record = event_record(stage.token, user, n, n)
                producer = await send_acknowledged(chaos.stack.bootstrap, producer,
                                                   stage.events_topic, [record])  # fmt: skip
                stage.produced.add(user, json.loads(record[1])["event_id"])
                sent = time.monotonic()
                key = user_keys(user, stage.prefix).profile
                while not await client.exists(key) and time.monotonic() - sent < 60:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)  # polling Redis: nothing to wait on in-process
                probes.append((sent - began, (time.monotonic() - sent) * 1000))
                n += 1
                await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - sent)))
        finally:
            await producer.stop()
            await client.aclose()

    minute_marks: list[dict[str, float]] = []  # what the worker and Redis did, each minute

    async def sample() -> None:
        client = aioredis.Redis.from_url(stage.redis_url)
        try:
            while not stop.is_set():
                at = time.monotonic() - began
                rss.append((at, stage.pool.rss_mb()))
                if not minute_marks or at - minute_marks[-1]["t"] >= 60:
                    minute_marks.append(await _marks(at, stage, client))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 5.0)
        finally:
            await client.aclose()

    flow = stage.flow(rate=rate, run=f"{stage.token}-soak").start()
    tasks = [asyncio.create_task(probe()), asyncio.create_task(sample())]
    await asyncio.sleep(o.soak_s)
    stop.set()
    await asyncio.gather(*tasks)
    drained = await flow.stop(o.recovery_timeout_s) and await stage.drained()

    rule = SoakRule()
    memory = trend([t for t, _ in rss], [v for _, v in rss])
    third = o.soak_s / 3
    first = [ms for t, ms in probes if t < third]
    last = [ms for t, ms in probes if t >= 2 * third]
    p95_first = float(np.percentile(first, 95)) if first else float("nan")
    p95_last = float(np.percentile(last, 95)) if last else float("nan")
    latency = trend([t for t, _ in probes], [ms for _, ms in probes])
    flat = rule.memory_flat(memory) and rule.latency_flat(p95_first, p95_last)
    minutes = int(o.soak_s // 60) or 1
    per_minute = [[ms for t, ms in probes if m * 60 <= t < (m + 1) * 60] for m in range(minutes)]
    stage.notes.update(
        per_minute=_per_minute(minute_marks),
        rss_mb_every_30_s=[round(v, 1) for t, v in rss if int(t) % 30 < 5],
        latency_p50_p95_ms_per_minute=[
            [round(float(np.percentile(xs, 50)), 1), round(float(np.percentile(xs, 95)), 1)]
            for xs in per_minute
            if xs
        ],
    )
    stage.notes.update(
        soak_s=o.soak_s, rss_start_mb=round(memory.start, 1),
        rss_slope_mb_per_min=round(memory.slope_per_min, 3),
        rss_change_mb=round(memory.change, 1), rss_samples=memory.samples,
        latency_p50_ms=round(float(np.percentile([ms for _, ms in probes], 50)), 1),
        latency_p95_first_third_ms=round(p95_first, 1),
        latency_p95_last_third_ms=round(p95_last, 1),
        latency_slope_ms_per_min=round(latency.slope_per_min, 3),
        latency_samples=latency.samples, flat=flat,
    )  # fmt: skip
    return await stage.result(f"{o.soak_s:.0f} s at {rate:.0f} ev/s (70 % of {peak:.0f})",
                              None, drained)  # fmt: skip


async def _marks(at: float, stage: Stage, client: aioredis.Redis) -> dict[str, float]:
    """Cumulative counters at ``at`` s: the worker's batches, events and batch seconds, and
    Redis's append-only-file rewrites and commands."""
    metrics = await asyncio.to_thread(stage.pool.workers[0].metrics)
    persistence = await client.info("persistence")
    stats = await client.info("stats")
    return {
        "t": at,
        "batches": metrics.get("nbo_batch_seconds_count", 0.0),
        "batch_seconds": metrics.get("nbo_batch_seconds_sum", 0.0),
        "events": metrics.get("nbo_events_received", 0.0),
        "aof_rewrites": float(persistence.get("aof_rewrites", 0)),
        "aof_rewriting": float(persistence.get("aof_rewrite_in_progress", 0)),
        "redis_commands": float(stats.get("total_commands_processed", 0)),
    }


def _per_minute(marks: list[dict[str, float]]) -> list[dict[str, float]]:
    """Per interval between two marks: mean events per batch, mean batch time, AOF rewrites
    started and whether one was running at its end."""
    out = []
    for a, b in itertools.pairwise(marks):
        batches = max(b["batches"] - a["batches"], 1.0)
        out.append({
            "t_s": round(b["t"]),
            "events_per_batch": round((b["events"] - a["events"]) / batches, 1),
            "ms_per_batch": round(1000 * (b["batch_seconds"] - a["batch_seconds"]) / batches, 1),
            "aof_rewrites": b["aof_rewrites"] - a["aof_rewrites"],
            "aof_rewriting": b["aof_rewriting"],
        })  # fmt: skip
    return out


PEAK_OFFER_FACTOR = 2.0
"""The loaded peak is measured with the load generator offering this many times the idle peak:
more than the worker takes, so the figure is the worker's, not the generator's."""


@dataclass(frozen=True)
class LoadedPeak:
    """Events per second the group committed, and the generator produced, in the same window."""

    committed_per_s: float
    generated_per_s: float

    @property
    def generator_bound(self) -> bool:
        """True when the worker kept up with all the generator produced: the figure is then
        only a lower bound of the worker's peak."""
        return self.committed_per_s >= 0.95 * self.generated_per_s


async def loaded_peak(chaos: Chaos, stage: Stage, offered: float, seconds: float) -> LoadedPeak:
    """Events per second the group commits while the flow offers ``offered`` per second
    (more than it takes), over the last three quarters of ``seconds``; and what the flow
    produced meanwhile."""

    async def committed() -> int:
        offsets = await committed_offsets(chaos.stack.bootstrap, stage.group, stage.events_topic)
        return sum((offsets or {}).values())

    flow = stage.flow(rate=offered, run=f"{stage.token}-peak").start()
    await asyncio.sleep(seconds / 4)
    first, sent0, t0 = await committed(), flow.sent, time.monotonic()
    await asyncio.sleep(seconds * 3 / 4)
    last, sent1, t1 = await committed(), flow.sent, time.monotonic()
    await flow.stop(chaos.options.recovery_timeout_s)
    await stage.drained()
    span = max(t1 - t0, 1e-3)
    return LoadedPeak((last - first) / span, (sent1 - sent0) / span)


def run_order() -> list[str]:
    """Every scenario, the soak first: it measures the worker's memory and latency over time,
    so it runs on the fresh stack, before the other scenarios have filled Redis and the broker
    with their data (run last, after them, one soak measured a p95 latency of 1.6 s where a
    soak on a fresh stack measures 0.2 s; the cause was not pinned down)."""
    return ["soak", *(name for name in SCENARIOS if name != "soak")]


# --- the run -----------------------------------------------------------------------------------


async def _run(chaos: Chaos, names: Sequence[str]) -> list[ScenarioResult]:
    await chaos.prepare()
    results = []
    for name in names:
        _, fn = SCENARIOS[name]
        stage = Stage(chaos.stage_config(), name,
                      users=chaos.options.soak_users if name == "soak" else None)  # fmt: skip
        log.info("scenario %s...", name)
        started = time.monotonic()
        try:
            result = await fn(chaos, stage)
        except Exception as exc:  # a scenario that breaks the harness is a failed row
            log.exception("scenario %s failed to run", name)
            await stage.pool.stop_all()
            result = ScenarioResult(name, SCENARIOS[name][0], reasons=[f"did not run: {exc!r}"])
        result.notes["scenario_s"] = round(time.monotonic() - started, 1)
        print(render_row(result), flush=True)
        results.append(result)
        await asyncio.to_thread(chaos.stack.up)  # whatever a scenario broke is back
        # (a failure to start it again ends the run: the next scenarios need it)
    return results


def run_chaos(
    settings: Settings, options: ChaosOptions, names: Sequence[str], json_path: Path | None
) -> list[ScenarioResult]:
    """Run ``names`` (in order) on a private stack; print the table; write ``json_path``."""
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenarios {unknown}; known: {', '.join(SCENARIOS)}")
    chaos = Chaos(settings, options)
    chaos.log_dir.mkdir(parents=True, exist_ok=True)
    print(f"chaos run {chaos.run}: stack in {chaos.stack.settings.stack_dir}, "
          f"logs in {chaos.log_dir}", flush=True)  # fmt: skip
    print(HEADER, flush=True)
    chaos.stack.up()
    try:
        results = asyncio.run(_run(chaos, names))
    finally:
        chaos.stack.down()
    print(render_table(results), flush=True)
    if json_path is not None:
        doc = {"run": chaos.run, "options": asdict(options), "machine": {
            "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()},
            "passed": all(r.passed for r in results),
            "scenarios": [asdict(r) for r in results]}  # fmt: skip
        json_path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return results


COLUMNS = ("scenario", "fault", "produced", "applied", "lost", "twice", "poison dlq",
           "other dlq", "recover s", "unasked", "result")  # fmt: skip
HEADER = " | ".join(COLUMNS)


def render_row(r: ScenarioResult) -> str:
    recovery = f"{r.recovery_s:.1f}" if r.recovery_s is not None else "-"
    verdict = "PASS" if r.passed else "FAIL: " + "; ".join(r.reasons)
    cells = (r.name, r.fault, r.produced, r.applied, r.lost, r.applied_twice,
             f"{r.poison_dead_lettered}/{r.poison_sent}", r.other_dead_letters, recovery,
             r.unasked_restarts, verdict)  # fmt: skip
    return " | ".join(str(c) for c in cells)


def render_table(results: Sequence[ScenarioResult]) -> str:
    """The chaos table as Markdown (the soak's figures below it)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + render_row(r) + " |" for r in results]
    for r in results:
        if "rss_slope_mb_per_min" in r.notes:
            n = r.notes
            bound = "; the worker kept up: a lower bound" if n.get("peak_generator_bound") else ""
            lines.append(
                f"\nsoak: peak {n['peak_events_per_s']} ev/s with the load generator running "
                f"(it produced {n.get('peak_generated_events_per_s', '?')} ev/s meanwhile{bound}; "
                f"{n['idle_peak_events_per_s']} ev/s draining a backlog without it), soak at "
                f"{n['soak_rate']} ev/s for "
                f"{n['soak_s']:.0f} s; worker RSS {n['rss_start_mb']} MB, slope "
                f"{n['rss_slope_mb_per_min']} MB/min ({n['rss_change_mb']} MB over the soak, "
                f"{n['rss_samples']} samples); latency (event sent -> in Redis) p50 "
                f"{n['latency_p50_ms']} ms, p95 {n['latency_p95_first_third_ms']} ms in the "
                f"first third and {n['latency_p95_last_third_ms']} ms in the last, slope "
                f"{n['latency_slope_ms_per_min']} ms/min ({n['latency_samples']} probes)"
            )
    return "\n".join(lines)
