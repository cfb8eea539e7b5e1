"""The console's memory of the workers' counters: a bounded ring of samples, and rates over
the last minutes and hours taken from it.

Every ``NBO_CONSOLE_SAMPLE_S`` seconds the console scrapes each worker's ``/metrics``
(:class:`Scrape`) and :meth:`History.add` folds the scrapes into running totals, one per
series (counter name and labels), summed over the workers:

* a worker's first answer sets its baseline and adds nothing (what it counted before the
  console saw it is not "in the window");
* a series that appears in a later answer of a worker already seen (a labelled counter is
  exported only from its first increment: the first message on a channel, the first dead
  letter of a reason) counted from 0, so its whole value is added;
* after that each answer adds ``value - previous``; a value below the previous one means the
  worker restarted and its counter began again at 0, so the whole value is added (the rule
  Prometheus' ``increase`` uses). A worker that does not answer adds nothing until it answers
  again.

The totals of each sample are kept (numpy arrays, one slot per series) in a ring of at most
``max_samples`` samples (``NBO_CONSOLE_HISTORY_S / NBO_CONSOLE_SAMPLE_S``); series beyond
``max_series`` are not tracked. The increase of a series over a window is the latest total less
the total of the oldest sample inside the window; when the history is shorter than the window,
the span actually covered is returned with it (the page says "since the console started").

A history of levels (``gauges=True``, e.g. each offer's posterior mean) keeps the latest value
of each series in each sample instead, read back with :meth:`History.points`.

Pure: no I/O, no clock (times are passed in).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from prometheus_client.parser import text_string_to_metric_families

F64 = npt.NDArray[np.float64]
Labels = tuple[tuple[str, str], ...]
Key = tuple[str, Labels]
"""A series: the sample name (``nbo_events_received_total``) and its labels, sorted."""


def key(name: str, **labels: str) -> Key:
    """The series ``name{labels}``."""
    return name, tuple(sorted(labels.items()))


def parse_counters(text: str, names: Iterable[str]) -> dict[Key, float]:
    """The samples of ``text`` (Prometheus text) whose name is one of ``names`` (e.g.
    ``nbo_events_received_total``), by series; ``ValueError`` if the text does not parse."""
    wanted = frozenset(names)
    out: dict[Key, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in wanted:
                k = (sample.name, tuple(sorted(sample.labels.items())))
                out[k] = out.get(k, 0.0) + float(sample.value)
    return out


@dataclass(frozen=True)
class Scrape:
    """One worker's answer: its endpoint and its counter values."""

    url: str
    values: Mapping[Key, float]


@dataclass(frozen=True)
class Sample:
    """The running totals at time ``t_s`` (one slot per tracked series) and the endpoints
    that answered."""

    t_s: float
    totals: F64
    alive: tuple[str, ...]


@dataclass(frozen=True)
class Window:
    """What a series did over a window: the increase, the seconds actually covered (less
    than asked while the history is short; 0: fewer than two samples)."""

    increase: float
    span_s: float

    @property
    def per_s(self) -> float | None:
        """The increase per second (``None`` without a span)."""
        return self.increase / self.span_s if self.span_s > 0 else None


class History:
    """The ring of samples (see module doc)."""

    def __init__(self, max_samples: int, max_series: int = 5000, *, gauges: bool = False) -> None:
        if max_samples < 2:
            raise ValueError(f"max_samples must be >= 2, got {max_samples}")
        self.max_series = max_series
        self.gauges = gauges
        """Keep each series' latest value as it is (a level, e.g. a posterior mean) instead
        of running totals of counters; read with :meth:`points`."""
        self._index: dict[Key, int] = {}
        self._previous: dict[tuple[str, Key], float] = {}
        self._answered: set[str] = set()
        """Endpoints whose first answer (their baseline) has been folded in."""
        self._totals: F64 = np.zeros(0, dtype=np.float64)
        self._samples: deque[Sample] = deque(maxlen=max_samples)
        self.untracked = 0
        """Series seen beyond ``max_series`` (not tracked)."""

    def __len__(self) -> int:
        return len(self._samples)

    @property
    def samples(self) -> tuple[Sample, ...]:
        return tuple(self._samples)

    @property
    def latest(self) -> Sample | None:
        return self._samples[-1] if self._samples else None

    def series(self) -> Iterator[Key]:
        """Every tracked series."""
        return iter(self._index)

    def _slot(self, k: Key) -> int | None:
        slot = self._index.get(k)
        if slot is None:
            if len(self._index) >= self.max_series:
                self.untracked += 1
                return None
            slot = self._index[k] = len(self._index)
            self._totals = np.append(self._totals, 0.0)
        return slot

    def add(self, t_s: float, scrapes: Iterable[Scrape]) -> Sample:
        """Fold one round of scrapes in at ``t_s`` (see module doc for the rules)."""
        alive: list[str] = []
        for scrape in scrapes:
            alive.append(scrape.url)
            first_answer = scrape.url not in self._answered
            self._answered.add(scrape.url)
            for k, value in scrape.values.items():
                slot = self._slot(k)
                if slot is None:
                    continue
                if self.gauges:
                    self._totals[slot] = value
                    continue
                before = self._previous.get((scrape.url, k))
                self._previous[(scrape.url, k)] = value
                if before is None:
                    if first_answer:
                        continue  # the baseline
                    before = 0.0  # a new series of a known worker: counted from 0
                self._totals[slot] += value - before if value >= before else value
        sample = Sample(t_s, self._totals.copy(), tuple(alive))
        self._samples.append(sample)
        return sample

    def _total(self, sample: Sample, k: Key) -> float:
        slot = self._index.get(k)
        if slot is None or slot >= len(sample.totals):
            return 0.0
        return float(sample.totals[slot])

    def _bounds(self, seconds: float) -> tuple[Sample, Sample] | None:
        """The oldest sample inside the last ``seconds`` and the latest (``None``: fewer than
        two samples)."""
        if len(self._samples) < 2:
            return None
        last = self._samples[-1]
        first = next(s for s in self._samples if s.t_s >= last.t_s - seconds)
        return first, last

    def _window(self, bounds: tuple[Sample, Sample] | None, keys: Iterable[Key]) -> Window:
        if bounds is None:
            return Window(0.0, 0.0)
        first, last = bounds
        increase = sum(self._total(last, k) - self._total(first, k) for k in keys)
        return Window(increase, last.t_s - first.t_s)

    def window(self, k: Key, seconds: float) -> Window:
        """The increase of ``k`` over the last ``seconds`` (see module doc)."""
        return self._window(self._bounds(seconds), (k,))

    def windows(self, keys: Iterable[Key], seconds: float) -> Window:
        """The summed increase of ``keys`` over the last ``seconds``."""
        return self._window(self._bounds(seconds), keys)

    def windows_by(self, groups: Mapping[str, Iterable[Key]], seconds: float) -> dict[str, Window]:
        """:meth:`windows` of each group of keys (the window's bounds found once)."""
        bounds = self._bounds(seconds)
        return {name: self._window(bounds, keys) for name, keys in groups.items()}

    def span(self, seconds: float) -> float:
        """The seconds the history covers of the last ``seconds``."""
        bounds = self._bounds(seconds)
        return 0.0 if bounds is None else bounds[1].t_s - bounds[0].t_s

    def points(self, k: Key, seconds: float) -> list[tuple[float, float]]:
        """``(t_s, value)`` of ``k`` in each sample of the last ``seconds`` that has it (for a
        chart of a level)."""
        slot = self._index.get(k)
        if slot is None or not self._samples:
            return []
        since = self._samples[-1].t_s - seconds
        return [
            (s.t_s, float(s.totals[slot]))
            for s in self._samples
            if s.t_s >= since and slot < len(s.totals)
        ]

    def rates(self, keys: Iterable[Key], seconds: float) -> list[tuple[float, float]]:
        """``(t_s, per second)`` of the summed ``keys`` between consecutive samples of the
        last ``seconds`` (for a chart)."""
        chosen = list(keys)
        samples = list(self._samples)
        if len(samples) < 2:
            return []
        since = samples[-1].t_s - seconds
        out: list[tuple[float, float]] = []
        for before, after in itertools.pairwise(samples):
            if before.t_s < since or after.t_s <= before.t_s:
                continue
            increase = sum(self._total(after, k) - self._total(before, k) for k in chosen)
            out.append((after.t_s, increase / (after.t_s - before.t_s)))
        return out


def label_values(keys: Iterable[Key], name: str, label: str) -> dict[str, list[Key]]:
    """The series of ``name`` grouped by the value of ``label`` (e.g. every
    ``nbo_offers_sent_by_group_total`` series per ``channel``)."""
    out: dict[str, list[Key]] = {}
    for k in keys:
        if k[0] == name:
            value = dict(k[1]).get(label, "")
            out.setdefault(value, []).append(k)
    return out
