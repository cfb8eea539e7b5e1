"""The ports behind the Overview and Offers pages, their in-memory twins, and the sampled
state the console keeps.

* :class:`KafkaSource`: consumer lag per partition of the events topic and the dead-letter
  topic (production: ``agents.console.kafka.KafkaConsoleSource``).
* :class:`OfferSource`: the offer statistics the workers keep in Redis, summed over the input
  partitions, and the catalogue's offer titles (production:
  ``agents.console.offer_source.RedisOfferSource``).
* :class:`Sampled`: the history of the workers' counters and their latest status, fed by the
  console's sampler (``agents.console.sampler``) and read by the pages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from app.console.history import History, Scrape, key
from app.console.overview import KafkaView, WorkerStatus
from app.core.exploration import OfferStats

POSTERIOR_MEAN = "posterior_mean"
"""The series of an offer's posterior mean in :attr:`Sampled.posteriors` (label ``offer``)."""
OFFER_STATS = "offer-stats"
"""The source name of the posterior samples."""


class KafkaSource(Protocol):
    async def kafka_view(self) -> KafkaView: ...


@dataclass(frozen=True)
class OfferData:
    """Per offer: its stats summed over ``partitions`` input partitions (decayed counts,
    valued at their latest event time) and the catalogue's titles; ``error``: why a part
    could not be read (``None``: fine)."""

    stats: Mapping[str, OfferStats]
    titles: Mapping[str, str]
    partitions: int
    error: str | None = None


class OfferSource(Protocol):
    async def offer_data(self) -> OfferData: ...

    async def offer_stats(self) -> Mapping[str, OfferStats]:
        """The statistics alone, read now (raises when they cannot be read)."""
        ...


@dataclass
class MemoryKafkaSource:
    """In-memory twin of :class:`KafkaSource`."""

    view: KafkaView = field(default_factory=KafkaView)

    async def kafka_view(self) -> KafkaView:
        return self.view


@dataclass
class MemoryOfferSource:
    """In-memory twin of :class:`OfferSource`."""

    data: OfferData = field(default_factory=lambda: OfferData({}, {}, 0))

    async def offer_data(self) -> OfferData:
        return self.data

    async def offer_stats(self) -> Mapping[str, OfferStats]:
        return self.data.stats


@dataclass
class Sampled:
    """The console's memory of the workers: the counter history and each worker's latest
    status (in the order of the configured endpoints)."""

    history: History
    workers: tuple[WorkerStatus, ...] = ()
    scrapes: tuple[Scrape, ...] = ()
    """The latest answers, as they came (counters since each worker started)."""
    posteriors: History | None = None
    """Each offer's posterior mean over time (a history of levels), when sampled."""

    def record_posteriors(self, t_s: float, means: Mapping[str, float]) -> None:
        """The offers' posterior means at ``t_s`` (kept only with a ``posteriors`` history)."""
        if self.posteriors is not None:
            values = {key(POSTERIOR_MEAN, offer=o): m for o, m in means.items()}
            self.posteriors.add(t_s, [Scrape(OFFER_STATS, values)])

    def record(
        self, t_s: float, scrapes: Iterable[Scrape], workers: Iterable[WorkerStatus]
    ) -> None:
        """One round of scrapes at ``t_s``: the answers, and every endpoint's status."""
        self.scrapes = tuple(scrapes)
        self.history.add(t_s, self.scrapes)
        self.workers = tuple(workers)

    def current(self, name: str, label: str) -> dict[str, float]:
        """The latest values of counter ``name`` summed over the workers, by ``label``."""
        out: dict[str, float] = {}
        for scrape in self.scrapes:
            for (series, labels), value in scrape.values.items():
                if series == name:
                    v = dict(labels).get(label, "")
                    out[v] = out.get(v, 0.0) + value
        return out
