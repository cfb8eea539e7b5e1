"""One chaos scenario's stage: its own topics, consumer group, Redis prefix and users, its
workers, the event flow, and the accounting at the end.

:meth:`Stage.run` starts the workers and the flow, lets events flow, injects the fault (a
coroutine that returns when the fault has ended: the killed process is back, the outage is
over), measures the time until everything produced before that moment is committed (the
lag back at 0), lets events flow a little longer, stops the flow, waits until the group has
committed everything, and compares each user's ``n_events`` in Redis with what was produced.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from app.chaos.flow import Flow
from app.chaos.kafka_state import read_all, wait_committed, wait_end_offsets
from app.chaos.ledger import Produced, Tally, Verdict, tally, verdict
from app.chaos.workers import WorkerPool
from app.storage.keys import user_keys
from app.topics import TopicSpec, ensure_topics

log = logging.getLogger(__name__)

PARTITIONS = 6
"""Partitions of each scenario's events topic (enough for three workers to share)."""


@dataclass(frozen=True)
class StageConfig:
    """What every stage of one run shares."""

    run: str
    bootstrap: str
    redis_url: str
    log_dir: Path
    base_env: dict[str, str]
    users: int
    rate: float
    settle_s: float
    recovery_timeout_s: float


@dataclass
class ScenarioResult:
    """One row of the chaos table."""

    name: str
    fault: str
    produced: int = 0
    applied: int = 0
    lost: int = 0
    applied_twice: int = 0
    poison_sent: int = 0
    poison_dead_lettered: int = 0
    other_dead_letters: int = 0
    recovery_s: float | None = None
    unasked_restarts: int = 0
    passed: bool = False
    reasons: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)


class Stage:
    """One scenario's topics, group, prefix, users and workers (see module doc)."""

    def __init__(self, config: StageConfig, name: str, users: int | None = None) -> None:
        self.config = config
        self.name = name
        self.token = f"{config.run}-{name}"
        self.events_topic = f"{self.token}-events"
        self.dlq_topic = f"{self.token}-dlq"
        self.group = f"{self.token}-group"
        self.prefix = self.token  # chaos-<6 hex>-<name>: within the 32 characters allowed
        self.users = [f"{self.token}-u{n}" for n in range(users or config.users)]
        self.produced = Produced()
        self.redis_url = config.redis_url
        self.poison_keys: set[bytes] = set()
        self.pool = WorkerPool(self.env(), config.log_dir / name)
        self.notes: dict[str, Any] = {}

    def env(self) -> dict[str, str]:
        """The environment of this stage's workers."""
        return {
            **self.config.base_env,
            "NBO_APP_ID": self.group,
            "NBO_TOPIC_USER_EVENTS": self.events_topic,
            "NBO_TOPIC_DEAD_LETTERS": self.dlq_topic,
            "NBO_REDIS_PREFIX": self.prefix,
            "NBO_REDIS_URL": self.redis_url,
            "NBO_USER_EVENTS_PARTITIONS": str(PARTITIONS),
        }

    def use_redis(self, url: str, **extra: str) -> None:
        """Point the workers started from now on at another Redis (a failover)."""
        self.redis_url = url
        self.pool.env = {**self.env(), **extra}

    async def create_topics(self) -> None:
        specs = [TopicSpec(self.events_topic, PARTITIONS, {}), TopicSpec(self.dlq_topic, 3, {})]
        await ensure_topics(self.config.bootstrap, specs)

    def flow(self, rate: float | None = None, run: str | None = None) -> Flow:
        return Flow(self.config.bootstrap, self.events_topic, run or self.token, self.users,
                    rate or self.config.rate, self.produced)  # fmt: skip

    async def run(
        self, fault_name: str, fault: Callable[[], Awaitable[None]], workers: int = 1
    ) -> ScenarioResult:
        """Workers up, events flowing, ``fault()``, recovery, drain, accounting."""
        await self.create_topics()
        await self.pool.start(workers)
        stop_watch = asyncio.Event()
        watch = asyncio.create_task(self.pool.watch(stop_watch))
        flow = self.flow().start()
        try:
            await asyncio.sleep(self.config.settle_s)
            await fault()
            recovery = await self.recovery()
            await asyncio.sleep(self.config.settle_s)
            sent = await flow.stop(self.config.recovery_timeout_s)
            drained = sent and await self.drained()
        except BaseException:
            await flow.cancel()
            raise
        finally:
            stop_watch.set()
            await watch
        return await self.result(fault_name, recovery, recovery is not None and drained)

    async def recovery(self) -> float | None:
        """Seconds from now (the fault's end) until the group has committed everything in
        the topic now (``None``: not within the time-out)."""
        started = time.monotonic()
        timeout = self.config.recovery_timeout_s
        target = await wait_end_offsets(self.config.bootstrap, self.events_topic, timeout)
        if target is None:
            return None
        left = timeout - (time.monotonic() - started)
        waited = await wait_committed(self.config.bootstrap, self.group, self.events_topic,
                                      target, left)  # fmt: skip
        return None if waited is None else time.monotonic() - started

    async def drained(self) -> bool:
        """Whether the group committed everything produced (the flow has stopped)."""
        return await self.recovery() is not None

    async def applied(self) -> dict[str, int]:
        """``n_events`` of every user the stage produced for."""
        users = list(self.produced.per_user)
        client = aioredis.Redis.from_url(self.redis_url)
        try:
            async with client.pipeline(transaction=False) as pipe:
                for user in users:
                    pipe.hget(user_keys(user, self.prefix).profile, "n_events")
                values = await pipe.execute()
        finally:
            await client.aclose()
        return {u: int(v) for u, v in zip(users, values, strict=True) if v is not None}

    async def result(self, fault: str, recovery: float | None, recovered: bool) -> ScenarioResult:
        """Stop the workers, count, judge. ``recovery``: seconds from the fault's end until the
        lag was 0 (``None``: no fault, or not in time); ``recovered``: whether it was, and
        everything produced was committed in the end."""
        await self.pool.stop_all()
        counts: Tally = tally(self.produced.per_user, await self.applied())
        letters = await read_all(self.config.bootstrap, self.dlq_topic)
        keys = [r.key or b"" for r in letters]
        poison_seen = {k for k in keys if k in self.poison_keys}
        other = sum(1 for k in keys if k not in self.poison_keys)
        judged: Verdict = verdict(
            counts,
            poison_sent=len(self.poison_keys),
            poison_dead_lettered=len(poison_seen),
            other_dead_letters=other,
            unasked_restarts=self.pool.unasked_restarts,
            recovered=recovered,
            flat=bool(self.notes.get("flat", True)),
        )
        return ScenarioResult(
            name=self.name, fault=fault, produced=counts.produced, applied=counts.applied,
            lost=counts.lost, applied_twice=counts.applied_twice,
            poison_sent=len(self.poison_keys), poison_dead_lettered=len(poison_seen),
            other_dead_letters=other, recovery_s=recovery,
            unasked_restarts=self.pool.unasked_restarts, passed=judged.passed,
            reasons=list(judged.reasons), notes=self.notes,
        )  # fmt: skip
