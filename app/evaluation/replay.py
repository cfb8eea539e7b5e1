"""Replaying an interaction log in time order and asking each method for its list.

The log is cut at the split time. Every method first sees all training events (``warm_up``),
then the test events arrive in time order, in groups of one user's events with the same
timestamp (simultaneous for the engine). Before a group is applied, each positive event in it
on an item the user has not interacted with yet becomes a :class:`Query`: "which offers would
you have shown this user just before now?". Positives on items the user already had are not
queries (the engine never offers what the user has seen), nor are items no offer contains.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import islice

import numpy as np
import numpy.typing as npt

from app.core.catalog import NO_END, NO_START, CatalogueSnapshot
from app.evaluation.metrics import RankingMetrics
from app.learning.interactions import InteractionLog

Ints = npt.NDArray[np.int64]
Indices = npt.NDArray[np.intp]


@dataclass(frozen=True, eq=False)
class Query:
    """One positive test interaction to predict.

    ``user`` / ``item``: codes of the log. ``targets``: offer rows containing the item (sorted).
    ``seen``: item codes the user interacted with before ``ts_ms`` (excluded from lists).
    ``recent``: the user's most recent distinct item codes, newest first. ``cold``: the item
    had no interaction before the split. ``returning``: the user had one.
    """

    qid: int
    user: int
    ts_ms: int
    item: int
    targets: Indices
    seen: Ints
    recent: tuple[int, ...]
    cold: bool
    returning: bool


class ItemOffers:
    """Item code -> offer rows of a snapshot (CSR layout), for targets and exclusions."""

    def __init__(self, item_ids: Sequence[str], snapshot: CatalogueSnapshot) -> None:
        empty = np.empty(0, dtype=np.intp)
        per_item = [np.sort(snapshot.item_offers.get(i, empty)) for i in item_ids]
        counts = np.array([len(r) for r in per_item], dtype=np.int64)
        self.ptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        self.rows = (np.concatenate(per_item) if per_item else empty).astype(np.intp)
        self.n_offers = snapshot.size

    def of(self, item: int) -> Indices:
        """Offer rows containing one item (sorted)."""
        return self.rows[self.ptr[item] : self.ptr[item + 1]]

    def of_many(self, items: npt.ArrayLike) -> Indices:
        """Offer rows containing any of ``items`` (may repeat)."""
        codes = np.asarray(items, dtype=np.int64)
        if codes.size == 0:
            return np.empty(0, dtype=np.intp)
        start = self.ptr[codes]
        counts = self.ptr[codes + 1] - start
        total = int(counts.sum())
        offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        return np.asarray(self.rows[np.repeat(start, counts) + offsets], dtype=np.intp)

    def pairs(self) -> tuple[Indices, Indices]:
        """(item code, offer row) pairs of all items."""
        counts = np.diff(self.ptr)
        return np.repeat(np.arange(len(counts)), counts).astype(np.intp), self.rows


class EligibilityEpochs:
    """Times between two validity boundaries of a snapshot share the same eligible offers."""

    def __init__(self, snapshot: CatalogueSnapshot) -> None:
        bounds = np.concatenate(
            (
                snapshot.valid_from[snapshot.valid_from != NO_START],
                snapshot.valid_until[snapshot.valid_until != NO_END],
            )
        )
        self._bounds = np.unique(bounds)
        self._snapshot = snapshot
        self._masks: dict[int, npt.NDArray[np.bool_]] = {}

    def epoch(self, ts_ms: int) -> int:
        """An id shared by all times with the same eligibility."""
        return int(np.searchsorted(self._bounds, ts_ms, side="right"))

    def ineligible(self, ts_ms: int) -> npt.NDArray[np.bool_]:
        """Mask of the offers not eligible at ``ts_ms`` (memoised per epoch; read-only)."""
        epoch = self.epoch(ts_ms)
        mask = self._masks.get(epoch)
        if mask is None:
            mask = ~self._snapshot.eligible_at(ts_ms)
            mask.flags.writeable = False
            self._masks[epoch] = mask
        return mask


class Method(ABC):
    """A recommender under replay; records each query's outcome into :attr:`metrics`."""

    def __init__(self, name: str, metrics: RankingMetrics) -> None:
        self.name = name
        self.metrics = metrics

    def warm_up(self, log: InteractionLog, end: int) -> None:  # noqa: B027 - optional hook
        """See the training rows ``[0, end)`` of ``log`` (all before the split)."""

    @abstractmethod
    def ask(self, query: Query) -> None:
        """Rank for ``query`` with the state before its timestamp (may be deferred)."""

    def observe(self, log: InteractionLog, start: int, end: int) -> None:  # noqa: B027
        """Apply the rows ``[start, end)`` (one user, one timestamp) to the state."""

    def finish(self) -> None:  # noqa: B027 - optional hook
        """Score whatever was deferred."""

    def retrain(self, log: InteractionLog, end: int) -> None:  # noqa: B027 - optional hook
        """Relearn the model from the rows ``[0, end)`` (every event before now); queries
        asked before must be scored with the previous model."""


@dataclass
class ReplayStats:
    """Counts of one replay (events and queries)."""

    n_events: int = 0
    n_train_events: int = 0
    n_test_events: int = 0
    n_queries: int = 0
    n_cold_queries: int = 0
    n_returning_queries: int = 0
    n_users_queried: int = 0
    skipped_repeat: int = 0
    """Positive test events on an item the user had already interacted with."""
    skipped_not_offered: int = 0
    """Positive test events on an item no offer contains."""
    retrains: int = 0
    """Times the methods relearned during the test period (``retrain_every_ms``)."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time per method, seconds."""


def replay(
    log: InteractionLog,
    split_ts: int,
    positive: npt.NDArray[np.bool_],
    item_offers: ItemOffers,
    methods: Sequence[Method],
    n_recent: int = 20,
    progress: Callable[[int], object] | None = None,
    retrain_every_ms: int | None = None,
) -> ReplayStats:
    """Run ``methods`` over ``log`` (see module docs); ``positive`` marks positive rows.

    ``n_recent``: recent items kept in each :class:`Query` (default 20). ``progress`` is
    called with the number of events processed since its previous call.
    ``retrain_every_ms``: every this much event time after the split, each method's
    :meth:`Method.retrain` is called with every row before the first event at or after the
    moment, before that event's queries (default ``None``: never).
    """
    n = len(log)
    end = int(np.searchsorted(log.ts_ms, split_ts, side="left"))
    stats = ReplayStats(n_events=n, n_train_events=end, n_test_events=n - end)
    seconds = dict.fromkeys((m.name for m in methods), 0.0)

    def timed(name: str, call: Callable[..., None], *args: object) -> None:
        t0 = time.perf_counter()
        call(*args)
        seconds[name] += time.perf_counter() - t0

    for m in methods:
        timed(m.name, m.warm_up, log, end)
    seen: dict[int, list[int]] = {}
    seen_set: dict[int, set[int]] = {}
    recent: dict[int, dict[int, None]] = {}
    users, items = log.user.tolist(), log.item.tolist()

    def remember(row: int) -> None:
        u, i = users[row], items[row]
        if i not in seen_set.setdefault(u, set()):
            seen_set[u].add(i)
            seen.setdefault(u, []).append(i)
        last = recent.setdefault(u, {})
        last.pop(i, None)
        last[i] = None

    for row in range(end):
        remember(row)
    warm_items = set(items[:end])
    warm_users = set(users[:end])
    if progress is not None:
        progress(end)

    queried: set[int] = set()
    qid = 0
    start = end
    next_retrain = split_ts + retrain_every_ms if retrain_every_ms is not None else None
    reported = end
    while start < n:
        u, ts = users[start], int(log.ts_ms[start])
        if next_retrain is not None and retrain_every_ms is not None and ts >= next_retrain:
            for m in methods:
                timed(m.name, m.retrain, log, start)
            stats.retrains += 1
            next_retrain += retrain_every_ms * ((ts - next_retrain) // retrain_every_ms + 1)
        stop = start + 1
        while stop < n and users[stop] == u and int(log.ts_ms[stop]) == ts:
            stop += 1
        asked: set[int] = set()
        queries: list[Query] = []
        for row in range(start, stop):
            item = items[row]
            if not positive[row] or item in asked:
                continue
            if item in seen_set.get(u, ()):
                stats.skipped_repeat += 1
                continue
            targets = item_offers.of(item)
            if targets.size == 0:
                stats.skipped_not_offered += 1
                continue
            asked.add(item)
            history = seen.get(u, [])
            queries.append(
                Query(
                    qid=qid,
                    user=u,
                    ts_ms=ts,
                    item=item,
                    targets=targets,
                    seen=np.array(history, dtype=np.int64),
                    recent=tuple(islice(reversed(recent.get(u, {})), n_recent)),
                    cold=item not in warm_items,
                    returning=u in warm_users,
                )
            )
            qid += 1
        for query in queries:
            queried.add(u)
            stats.n_queries += 1
            stats.n_cold_queries += int(query.cold)
            stats.n_returning_queries += int(query.returning)
            for m in methods:
                timed(m.name, m.ask, query)
        for m in methods:
            timed(m.name, m.observe, log, start, stop)
        for row in range(start, stop):
            remember(row)
        start = stop
        if progress is not None and start - reported >= 1000:
            progress(start - reported)
            reported = start
    for m in methods:
        timed(m.name, m.finish)
    if progress is not None and n > reported:
        progress(n - reported)
    stats.n_users_queried = len(queried)
    stats.seconds = seconds
    return stats
