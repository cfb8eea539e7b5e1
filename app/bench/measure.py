"""Measuring helpers of the benchmark: child processes, rate-limited load, latencies, Redis."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from app.storage.keys import cart_due_key


@dataclass(frozen=True)
class ChildRun:
    """A finished child process: its JSON result, CPU seconds and peak RSS (bytes)."""

    result: dict[str, Any]
    cpu_s: float
    peak_rss: int


def own_peak_rss_bytes() -> int:
    """This process's peak resident memory since its exec (VmHWM), bytes.

    Unlike ``ru_maxrss``, it does not count the parent's pages that a child maps between
    fork and exec, so a child reports its own peak.
    """
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def passthrough_parser(prog: str) -> argparse.ArgumentParser:
    """The command line shared by the passthroughs: ``--bootstrap --source --sink --group``
    (required), ``--expect N`` (drain mode: stop after N records) and ``--batch`` (500)."""
    parser = argparse.ArgumentParser(prog=prog)
    for name in ("--bootstrap", "--source", "--sink", "--group"):
        parser.add_argument(name, required=True)
    parser.add_argument("--expect", type=int)
    parser.add_argument("--batch", type=int, default=500)
    return parser


def run_child(module: str, args: Sequence[str], env: dict[str, str]) -> ChildRun:
    """Run ``python -m module args`` to completion; its last stdout line is JSON (with its
    own ``peak_rss_bytes``)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *args], env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{module} failed with exit code {proc.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    return ChildRun(result, usage.ru_utime + usage.ru_stime, int(result["peak_rss_bytes"]))


def percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    """p50, p95, p99 (ms) and the sample count."""
    if not samples_ms:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "samples": 0}
    arr = np.asarray(samples_ms, dtype=np.float64)
    p50, p95, p99 = np.percentile(arr, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "samples": len(arr)}


async def produce_at_rate(
    bootstrap: str, topic: str, events: Sequence[tuple[bytes, dict[str, Any]]], rate: float
) -> dict[str, int]:
    """Send ``events`` (key, doc) at ``rate`` per second; returns event_id -> send time (ms).

    Each record's Kafka timestamp is its send time, and the event's ``ts`` too.
    """
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    sent: dict[str, int] = {}
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        i = 0
        while i < len(events):
            due = int((loop.time() - start) * rate) + 1
            while i < min(due, len(events)):
                key, doc = events[i]
                now = int(time.time() * 1000)
                doc = {**doc, "ts": now}
                await producer.send(topic, json.dumps(doc).encode(), key, timestamp_ms=now)
                sent[str(doc["event_id"])] = now
                i += 1
            await asyncio.sleep(0.002)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


class OutputRecorder:
    """Reads an output topic from its current end and keeps (timestamp ms, value) pairs."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="latest"
        )
        self.records: list[tuple[int, bytes]] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        await self._consumer.seek_to_end()
        for tp in self._consumer.assignment():  # resolve positions now, before producing
            await self._consumer.position(tp)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            for records in (await self._consumer.getmany(timeout_ms=100)).values():
                self.records += [(r.timestamp, r.value or b"") for r in records]

    async def stop(self, settle_s: float = 2.0) -> None:
        await asyncio.sleep(settle_s)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()


def latencies(records: Sequence[tuple[int, bytes]], sent: dict[str, int], path: str) -> list[float]:
    """Output timestamp minus the send time of the event named at ``path`` in each value."""
    out: list[float] = []
    for ts, value in records:
        doc: Any = json.loads(value)
        for part in path.split("."):
            doc = doc.get(part) if isinstance(doc, dict) else None
        if isinstance(doc, str) and doc in sent:
            out.append(float(ts - sent[doc]))
    return out


async def redis_command_calls(url: str) -> int:
    """Total calls of every command so far (INFO commandstats)."""
    client = aioredis.Redis.from_url(url)
    try:
        stats = await client.info("commandstats")
        return sum(int(v["calls"]) for v in stats.values() if isinstance(v, dict))
    finally:
        await client.aclose()


async def redis_cpu_seconds(url: str) -> float:
    """CPU seconds the Redis server's own process used so far, user and system (INFO cpu;
    forked children, such as an AOF rewrite, are not included)."""
    client = aioredis.Redis.from_url(url)
    try:
        cpu = await client.info("cpu")
        return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])
    finally:
        await client.aclose()


async def redis_aof_rewrites(url: str) -> int:
    """AOF rewrites the Redis server started so far, the one under way included (INFO
    persistence ``aof_rewrites``, counted when the rewrite's child is forked): each child
    takes a core while it writes the dataset."""
    client = aioredis.Redis.from_url(url)
    try:
        info = await client.info("persistence")
        return int(info.get("aof_rewrites", 0))
    finally:
        await client.aclose()


async def compact_aof(url: str, timeout_s: float = 120.0) -> bool:
    """Rewrite the server's AOF now and wait until the rewrite is done (returns ``False``, doing
    nothing, when the server does not persist to an AOF).

    Redis rewrites its AOF by itself once the file has grown by ``auto-aof-rewrite-percentage``
    (100 %) since the last rewrite: after the benchmark's drains that can fall in any later
    window, where the forked child takes one of the machine's two shared cores for 1-2 s and
    stalls the worker (a p99 of 153 ms against 64 ms in the runs without one). Rewriting
    first leaves the window a file that has to double again before the next automatic rewrite.
    Raises ``TimeoutError`` when the rewrite is not done within ``timeout_s``."""
    client = aioredis.Redis.from_url(url)
    try:
        if not int((await client.info("persistence")).get("aof_enabled", 0)):
            return False
        deadline = time.monotonic() + timeout_s
        # one rewrite at a time: Redis refuses a second while one runs
        before = await _rewrites_done(client, 0, deadline)
        await client.bgrewriteaof()
        await _rewrites_done(client, before + 1, deadline)
        return True
    finally:
        await client.aclose()


async def _rewrites_done(client: aioredis.Redis, at_least: int, deadline: float) -> int:
    """Wait until the server has started ``at_least`` AOF rewrites and none is under way;
    returns how many it started. ``TimeoutError`` past ``deadline`` (``time.monotonic``)."""
    while True:
        info = await client.info("persistence")
        started = int(info["aof_rewrites"])
        if started >= at_least and not int(info["aof_rewrite_in_progress"]):
            return started
        if time.monotonic() > deadline:
            raise TimeoutError("an AOF rewrite did not finish")
        await asyncio.sleep(0.05)


async def delete_prefix(url: str, prefix: str) -> int:
    """Delete every key under ``prefix:``; returns the count."""
    client = aioredis.Redis.from_url(url)
    deleted = 0
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += await client.unlink(*batch)
                batch.clear()
        if batch:
            deleted += await client.unlink(*batch)
    finally:
        await client.aclose()
    return deleted


async def due_cart_timers(url: str, prefix: str, topic: str, partitions: int) -> int:
    """Cart timers due now in ``topic``'s per-partition indexes under ``prefix`` (ZCOUNT)."""
    client = aioredis.Redis.from_url(url)
    now = int(time.time() * 1000)
    try:
        async with client.pipeline(transaction=False) as pipe:
            for p in range(partitions):
                pipe.zcount(cart_due_key(topic, p, prefix), "-inf", now)
            counts: list[int] = await pipe.execute()
    finally:
        await client.aclose()
    return sum(counts)


async def wait_carts_fired(
    url: str, prefix: str, topic: str, partitions: int, timeout_s: float
) -> tuple[int, int, float]:
    """Wait until no cart timer of ``topic`` is due under ``prefix`` (a worker fired them all)
    or ``timeout_s`` passed; returns the count due at first, the count due at the end (0 unless
    timed out) and the seconds waited."""
    started = time.monotonic()
    first = await due_cart_timers(url, prefix, topic, partitions)
    due = first
    while due and time.monotonic() - started < timeout_s:
        await asyncio.sleep(0.5)
        due = await due_cart_timers(url, prefix, topic, partitions)
    return first, due, time.monotonic() - started
