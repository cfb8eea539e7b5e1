"""Redis adapter of :class:`app.ports.OfferStatsStore`: offer feedback stats per input partition.

Layout (a public contract, like :mod:`app.storage.keys`): one hash per (topic, partition) of
the events topic, ``<prefix>:offer-stats:{<topic>:<partition>}``, written by whichever worker
consumes that partition:

* ``_offset``: the highest Kafka offset whose deltas were written;
* ``_tid``: the Kafka topic id that offset belongs to (absent if unknown): an offset of another
  topic id (the topic was deleted and created again) counts as none, the counts are kept;
* ``o:<offer_id>``: ``"<impressions> <clicks> <accepts> <t_ms>"``, the decayed counts of the
  offer's events on that partition, valued at event time ``t_ms`` (epoch ms).

:meth:`RedisOfferStatsStore.apply` runs ``offer_stats.lua`` once per partition: the deltas are
merged (decay inside Lua, the formula of :func:`app.core.exploration.merge`) and the offset
stored in one atomic step, only if the stored offset is below the update's first offset, so
a redelivered batch counts once (see :class:`~app.core.exploration.StatsApplyOutcome`). Each
write refreshes the hash's TTL (default 30 days). The calls go out in one pipeline on a
single server, concurrently on a cluster (each partition's hash has its own hash tag, so the
partitions spread over the nodes). :meth:`RedisOfferStatsStore.read_all` reads every
partition's hash in one pipeline and sums them per offer (:func:`~app.core.exploration.merge_all`);
the result is valued at the latest event time seen, not decayed to "now" (the caller does,
e.g. :func:`~app.core.exploration.posterior`). Reading costs O(offers x partitions): refresh
it every few seconds, not per batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from app.core.exploration import (
    DEFAULT_HALF_LIFE_MS,
    OfferStats,
    OfferStatsUpdate,
    StatsApplyOutcome,
    check_distinct,
    merge_all,
)
from app.storage.keys import PREFIX
from app.storage.lua_script import LuaScript, unavailable_raises

OFFSET_FIELD = "_offset"
OFFER_FIELD_PREFIX = "o:"


@dataclass(frozen=True)
class OfferStatsConfig:
    """Parameters of the offer stats store.

    ``half_life_ms``: decay half-life, event-time ms (default 7 days; must equal the
    :class:`~app.core.exploration.ExplorationConfig` one). ``ttl_s``: TTL of each partition's
    hash, refreshed on each write (default 30 days). ``prefix``: key prefix (default ``nbo``).
    """

    half_life_ms: int = DEFAULT_HALF_LIFE_MS
    ttl_s: int = 30 * 86_400
    prefix: str = PREFIX


def offer_stats_key(topic: str, partition: int, prefix: str = PREFIX) -> str:
    """The stats hash of one input partition (topic names cannot contain braces)."""
    return f"{prefix}:offer-stats:{{{topic}:{partition}}}"


def decode_stats(raw: bytes | str) -> OfferStats | None:
    """An ``o:<offer_id>`` value, ``"<impressions> <clicks> <accepts> <t_ms>"``; ``None``
    when it does not parse or is not finite."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    try:
        imp, clk, acc, t = (float(x) for x in text.split(" "))
    except ValueError:
        return None
    if not all(math.isfinite(x) for x in (imp, clk, acc, t)):
        return None
    return OfferStats(imp, clk, acc, int(t))


class RedisOfferStatsStore:
    """Offer feedback stats in Redis (see module doc); ``round_trips`` counts requests sent."""

    def __init__(
        self, client: aioredis.Redis | RedisCluster, config: OfferStatsConfig | None = None
    ) -> None:
        self._client = client
        self._config = config or OfferStatsConfig()
        self._script = LuaScript("offer_stats.lua")
        self.round_trips = 0

    def key(self, topic: str, partition: int) -> str:
        """The stats hash of ``topic`` / ``partition``."""
        return offer_stats_key(topic, partition, self._config.prefix)

    async def apply(self, updates: Sequence[OfferStatsUpdate]) -> StatsApplyOutcome:
        """Write each update atomically unless its partition already holds its records."""
        check_distinct(updates)
        calls = [((self.key(u.topic, u.partition),), self._args(u)) for u in updates]
        replies, trips = await self._script.run_idempotent(self._client, calls)
        self.round_trips += trips
        applied: set[tuple[str, int]] = set()
        duplicates: set[tuple[str, int]] = set()
        overlaps: dict[tuple[str, int], int] = {}
        for update, (status, offset) in zip(updates, replies, strict=True):
            if int(status) == 1:
                applied.add(update.source)
            elif int(status) == 0:
                duplicates.add(update.source)
            else:
                overlaps[update.source] = int(offset)
        return StatsApplyOutcome(frozenset(applied), frozenset(duplicates), overlaps)

    def _args(self, update: OfferStatsUpdate) -> list[str | int]:
        cfg = self._config
        args: list[str | int] = [
            cfg.ttl_s,
            cfg.half_life_ms,
            update.first_offset,
            update.last_offset,
            update.topic_id,
        ]
        for offer_id, s in update.stats.items():
            args += [offer_id, repr(s.impressions), repr(s.clicks), repr(s.accepts), s.t_ms]
        return args

    async def read_all(self, topic: str, partitions: Sequence[int]) -> dict[str, OfferStats]:
        """Per offer, its stats summed over ``partitions`` of ``topic`` (one pipeline)."""
        if not partitions:
            return {}
        self.round_trips += 1
        with unavailable_raises("while reading offer stats"):
            async with self._client.pipeline(transaction=False) as pipe:
                for partition in partitions:
                    pipe.hgetall(self.key(topic, partition))
                replies: list[Any] = await pipe.execute()
        return merge_all((_offers(raw) for raw in replies), self._config.half_life_ms)


def _offers(raw: dict[bytes, bytes]) -> dict[str, OfferStats]:
    prefix = OFFER_FIELD_PREFIX.encode()
    out: dict[str, OfferStats] = {}
    for field, value in raw.items():
        if field.startswith(prefix) and (stats := decode_stats(value)) is not None:
            out[field[len(prefix) :].decode()] = stats
    return out
