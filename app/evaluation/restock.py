"""``nbo evaluate --restock``: the predicted next order of repeatable items, offline.

Protocol (the same for every variant; see ``docs/learning.md``, "Predicted next order"):

1. The log (a shop whose ``repeatable`` items some people buy in cycles,
   :func:`app.datasets.synthetic.restock_log`) is cut at the ``split_quantile`` (0.8) of its
   event times. Only the events before the split give each repeatable item its population
   interval (the median gap between one person's consecutive purchases of it, purchases
   closer than the restock ``min_gap_ms`` counted once), the catalogue's ``restock_days``.
2. Every event is replayed in time order through the core: the person's profile
   (:func:`~app.core.profile.apply_events`, the worker's event weights and half-life), their
   purchased items and, for repeatable items, their repurchase cycles
   (:func:`~app.core.restock.update_cycles`).
3. Before each purchase at or after the split, of an item the catalogue knows, every variant
   ranks the whole catalogue (one offer per item) for that person at the purchase's time with
   :func:`~app.core.scoring.score_batch`, the same call and profile for all three:

   * ``exclude_purchased``: every item the person bought before is excluded (the engine
     without repeatable items);
   * ``include_purchased``: nothing is excluded;
   * ``restock``: purchased items are excluded except the repeatable ones due at that time
     (:func:`~app.core.restock.due_items`), which get the restock part (the worker's rule).

   A hit at K: the purchased item's offer is among the top K. The purchase is a **repeat**
   when the person bought the item before (anywhere earlier in the log), else **new**. Hit
   rates are reported on repeats, on new purchases and on all.

No Kafka, no Redis. Pure: numpy and the core.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.core.catalog import Catalogue
from app.core.catalog_records import Item
from app.core.enums import EventType
from app.core.events import UserEvent
from app.core.profile import PendingEvent, Profile, ProfileConfig, apply_events
from app.core.restock import Cycle, RestockConfig, due_items, restock_rows, update_cycles
from app.core.scoring import ScoringConfig, score_batch
from app.core.weights import EventWeights, event_weight
from app.evaluation.evaluate import item_offer
from app.evaluation.split import temporal_split

VARIANTS = ("exclude_purchased", "include_purchased", "restock")
"""The three treatments of purchased items, in report order."""
SEGMENTS = ("repeat", "new", "all")
"""Which test purchases a hit rate is over."""
DAY_MS = 86_400_000


@dataclass(frozen=True)
class RestockEvaluationConfig:
    """What the replay uses (defaults: the worker's)."""

    k: int = 10
    split_quantile: float = 0.8
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    weights: EventWeights = field(default_factory=EventWeights)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    restock: RestockConfig = field(default_factory=RestockConfig)


@dataclass
class RestockReport:
    """Hits and queries per variant and segment, and the protocol's counts."""

    k: int
    split_ts_ms: int
    n_events: int
    n_offers: int
    n_repeatable: int
    hits: dict[str, dict[str, int]]
    queries: dict[str, int]
    priors_days: dict[str, float]
    config: dict[str, Any]
    seconds: float = 0.0

    def hit_rate(self, variant: str, segment: str) -> float:
        """HitRate@K of ``variant`` over the ``segment``'s test purchases (0 without any)."""
        n = self.queries[segment]
        return self.hits[variant][segment] / n if n else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``hit_rate.<variant>.<segment>``, ``queries.<segment>``, protocol."""
        return {
            "protocol": {
                "k": self.k,
                "split_ts_ms": self.split_ts_ms,
                "events": self.n_events,
                "offers": self.n_offers,
                "repeatable_items": self.n_repeatable,
                "items_with_a_population_interval": len(self.priors_days),
            },
            "queries": dict(self.queries),
            "hits": {v: dict(h) for v, h in self.hits.items()},
            "hit_rate": {v: {s: round(self.hit_rate(v, s), 6) for s in SEGMENTS} for v in VARIANTS},
            "config": self.config,
            "seconds": round(self.seconds, 3),
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    def table(self) -> str:
        """A terminal table: HitRate@K per variant on repeat, new and all purchases."""
        head = f"{'variant':<20}" + "".join(f"{f'HR@{self.k} {s}':>16}" for s in SEGMENTS)
        rows = [head, "-" * len(head)]
        for v in VARIANTS:
            rows.append(f"{v:<20}" + "".join(f"{self.hit_rate(v, s):>16.4f}" for s in SEGMENTS))
        rows.append(
            f"{'test purchases':<20}" + "".join(f"{self.queries[s]:>16d}" for s in SEGMENTS)
        )
        return "\n".join(rows)


def population_intervals(
    events: Iterable[UserEvent], repeatable: Iterable[str], min_gap_ms: int
) -> dict[str, int]:
    """Item id -> the median gap (ms) between one person's consecutive purchases of it, over
    every person, for the ``repeatable`` items with at least one gap in ``events``."""
    wanted = set(repeatable)
    last: dict[tuple[str, str], int] = {}
    gaps: dict[str, list[int]] = defaultdict(list)
    for e in sorted(events, key=lambda e: e.ts_ms):
        if e.type is not EventType.PURCHASE or e.item_id not in wanted:
            continue
        key = (e.user_id, e.item_id)
        before = last.get(key)
        if before is not None and e.ts_ms - before < min_gap_ms:
            continue
        if before is not None:
            gaps[e.item_id].append(e.ts_ms - before)
        last[key] = e.ts_ms
    return {item: int(np.median(g)) for item, g in gaps.items()}


@dataclass
class _Person:
    profile: Profile | None = None
    purchased: set[str] = field(default_factory=set)
    cycles: dict[str, Cycle] = field(default_factory=dict)


def evaluate_restock(
    events: Sequence[UserEvent],
    items: Sequence[Item],
    config: RestockEvaluationConfig | None = None,
) -> RestockReport:
    """Replay ``events`` over a catalogue of ``items`` (one offer each) by the module's
    protocol and count each variant's hits."""
    started = time.perf_counter()
    cfg = config or RestockEvaluationConfig()
    scoring = cfg.scoring.model_copy(update={"k": cfg.k})
    ordered = sorted(events, key=lambda e: (e.ts_ms, e.event_id))
    split = temporal_split([e.ts_ms for e in ordered], cfg.split_quantile)
    repeatable = {i.item_id for i in items if i.repeatable}
    train = [e for e in ordered if e.ts_ms < split]
    priors = population_intervals(train, repeatable, cfg.restock.min_gap_ms)
    catalogue = Catalogue(cfg.profile.dim)
    for item in items:
        prior = priors.get(item.item_id)
        days = None if prior is None else min(3650.0, max(prior / DAY_MS, 1e-3))
        catalogue.upsert_item(item.model_copy(update={"vector": None, "restock_days": days}))
        catalogue.upsert_offer(item_offer(item))
    snap = catalogue.snapshot()
    people: dict[str, _Person] = defaultdict(_Person)
    hits = {v: dict.fromkeys(SEGMENTS, 0) for v in VARIANTS}
    queries = dict.fromkeys(SEGMENTS, 0)
    zeros = np.zeros(catalogue.dim, dtype=np.float32)
    empty_row = restock_rows({}, snap)
    for n, event in enumerate(ordered):
        person = people[event.user_id]
        item_id = event.item_id
        known = item_id is not None and item_id in snap.item_offers
        if event.type is EventType.PURCHASE and event.ts_ms >= split and known:
            assert item_id is not None
            vec = person.profile.vec if person.profile is not None else zeros
            due = due_items(
                person.cycles, event.ts_ms, cfg.restock, snap.repeatable, snap.restock_prior_ms
            )
            excluded = [person.purchased, set(), person.purchased - due.keys()]
            lifts = [empty_row, empty_row, restock_rows(due, snap)]
            ranked = score_batch(
                np.stack([vec, vec, vec]), event.ts_ms, catalogue, scoring, excluded,
                reasons=False, restock=lifts,
            )  # fmt: skip
            segment = "repeat" if item_id in person.purchased else "new"
            queries[segment] += 1
            queries["all"] += 1
            for variant, row in zip(VARIANTS, ranked, strict=True):
                if any(item_id in s.offer.item_ids for s in row):
                    hits[variant][segment] += 1
                    hits[variant]["all"] += 1
        pending = PendingEvent(
            event_id=event.event_id, partition=0, offset=n, ts_ms=event.ts_ms,
            weight=event_weight(event, cfg.weights), vector=catalogue.event_vector(event),
        )  # fmt: skip
        person.profile = apply_events(person.profile, [pending], cfg.profile).profile
        if event.type is EventType.PURCHASE and item_id is not None:
            person.purchased.add(item_id)
            if item_id in snap.repeatable:
                person.cycles = update_cycles(person.cycles, [(item_id, event.ts_ms)], cfg.restock)
    return RestockReport(
        k=cfg.k,
        split_ts_ms=split,
        n_events=len(ordered),
        n_offers=snap.size,
        n_repeatable=len(snap.repeatable),
        hits=hits,
        queries=queries,
        priors_days={i: round(p / DAY_MS, 3) for i, p in sorted(priors.items())},
        config={
            "split_quantile": cfg.split_quantile,
            "half_life_ms": cfg.profile.half_life_ms,
            "dim": cfg.profile.dim,
            "scoring": scoring.model_dump(),
            "restock": cfg.restock.model_dump(),
            "weights": cfg.weights.model_dump(mode="json"),
        },
        seconds=time.perf_counter() - started,
    )
