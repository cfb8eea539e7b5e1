"""The console's sampler: every ``NBO_CONSOLE_SAMPLE_S`` seconds, every worker's ``/metrics``
(each configured URL at every address its host resolves to, :mod:`app.console.discovery`;
2 seconds at most each, in parallel) into the console's :class:`~app.console.feeds.Sampled`
history (see :mod:`app.console.history` for what is kept and how rates are taken), and each
offer's posterior mean from the Redis offer statistics (one pipelined read of every
partition's hash, as a worker's refresh does) into the history of levels."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from agents.console.discovery import MetricsReader
from app.console.feeds import OfferSource, Sampled
from app.console.history import History, Scrape
from app.console.offers import posterior_means
from app.console.overview import WorkerStatus, read_worker
from app.core.exploration import ExplorationConfig
from app.ports import StoreUnavailable
from app.settings import Settings

log = logging.getLogger(__name__)


def history_of(settings: Settings, *, gauges: bool = False) -> History:
    """An empty history long enough for ``NBO_CONSOLE_HISTORY_S`` at ``NBO_CONSOLE_SAMPLE_S``."""
    samples = math.ceil(settings.console_history_s / settings.console_sample_s) + 1
    return History(samples, gauges=gauges)


@dataclass
class Sampler:
    """Scrapes ``urls`` into ``sampled`` (see module doc)."""

    urls: Sequence[str]
    sampled: Sampled
    interval_s: float
    clock: Callable[[], float] = time.time
    offers: OfferSource | None = None
    """Where each offer's statistics are read for its posterior over time (none: not kept)."""
    exploration: ExplorationConfig = field(default_factory=ExplorationConfig)
    _reader: MetricsReader[tuple[Scrape, WorkerStatus]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._reader = MetricsReader(self.urls, read_worker, level=logging.DEBUG)

    async def sample_once(self) -> None:
        """One round: scrape every worker, fold the answers in."""
        answers = await self._reader.read()
        workers = [a[1] if a is not None else WorkerStatus(u, False) for u, a in answers]
        now = self.clock()
        self.sampled.record(now, [a[0] for _, a in answers if a is not None], workers)
        if self.offers is not None and self.sampled.posteriors is not None:
            try:
                stats = await self.offers.offer_stats()
            except (StoreUnavailable, TimeoutError, OSError) as exc:
                log.debug("console sampler: no offer statistics: %s", exc)
                return
            means = posterior_means(stats, int(now * 1000), self.exploration)
            self.sampled.record_posteriors(now, means)

    async def run(self) -> None:
        """Sample until cancelled. A cancellation that a client library turned into one of
        its own errors during a round (seen: a Redis read cancelled at shutdown surfaced as
        an unavailable store) still ends the loop: the task's pending cancellation is checked
        after each round, else the console's shutdown would wait for it forever."""
        task = asyncio.current_task()
        while True:
            started = time.monotonic()
            try:
                await self.sample_once()
            except Exception:  # keep sampling; the pages show what the history holds
                log.exception("console sampler: a round failed")
            if task is not None and task.cancelling():
                raise asyncio.CancelledError
            await asyncio.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))

    async def close(self) -> None:
        await self._reader.close()
