"""A user's time-decayed preference vector and the idempotent update rule.

Update rule (event time only, never the wall clock, so a replay rebuilds the same vector).
With half-life ``h`` and ``t_ref`` the largest event time applied so far:

* an event at ``ts >= t_ref``: ``v <- v * 2^(-(ts - t_ref)/h) + w*x``, then ``t_ref <- ts``;
* a late event at ``ts < t_ref``: ``v <- v + w*x * 2^(-(t_ref - ts)/h)``, ``t_ref`` unchanged.

So ``v = sum_i w_i x_i 2^(-(t_ref - t_i)/h)`` whatever the arrival order; a very late event
simply contributes a tiny decayed amount (there is no lateness cut-off).

Idempotency: an event is a duplicate when its offset is <= the highest applied offset of its
partition ("replayed offset"), or its ``event_id`` is among the recent ids ("duplicate
event_id"), including repeats within one call. Recent ids are kept for
``recent_ids_retention_ms`` of event time before ``t_ref`` and at most ``recent_ids_max``
of them (the newest by ``(ts_ms, event_id)``); older retries are not detected by id.

Offsets belong to one incarnation of the events topic (its Kafka topic id, ``topic_id``): a
topic deleted and created again, or mirrored to another cluster, starts its offsets again from
0, so offsets recorded for another topic id say nothing about the new one. When the events
come from a topic whose id differs from the profile's, the stored offsets are void (set to -1,
so the stored ones are overwritten) and only the recent event ids guard against duplicates
(``ApplyResult.offsets_reset``). A profile without a topic id (written before ids were
recorded, or by a worker that could not learn the id) adopts the first id it is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from app.core import defaults
from app.core.restock import Cycle
from app.core.vectors import DEFAULT_DIM, Vector, check_dim

DAY_MS = 86_400_000


class ProfileConfig(BaseModel):
    """Parameters of the profile update."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dim: int = Field(default=DEFAULT_DIM, ge=2)
    """Vector dimension D (default 64)."""
    half_life_ms: int = Field(default=defaults.PROFILE_HALF_LIFE_S * 1000, gt=0)
    """Half-life of an event's contribution, event-time ms (default 7 days)."""
    recent_ids_max: int = Field(default=defaults.RECENT_EVENT_IDS, ge=0)
    """Most event ids remembered for duplicate detection (default 32)."""
    recent_ids_retention_ms: int = Field(default=defaults.RECENT_EVENT_IDS_RETENTION_S * 1000, ge=0)
    """How long (event time before ``t_ref``) an id is remembered, ms (default 7 days)."""


def decay(dt_ms: float, half_life_ms: float) -> float:
    """``2^(-dt/h)``: the factor an event contribution keeps after ``dt_ms`` of event time."""
    return float(2.0 ** (-dt_ms / half_life_ms))


@dataclass(frozen=True, eq=False)
class Profile:
    """A user's profile state (immutable; ``vec`` is a read-only float32 copy).

    ``t_ref_ms``: event time the vector is expressed at (largest applied event time; 0 for a
    new profile). ``n_events``: events applied. ``updated_at_ms``: when it was last changed
    (the ``now_ms`` given to :func:`apply_events`, else ``t_ref_ms``). ``offsets``: partition ->
    highest applied Kafka offset (treat as read-only), of the events topic whose Kafka topic id
    is ``topic_id`` ("" if unknown). ``recent_event_ids``: ``(event_id, ts_ms)`` sorted by
    ``(ts_ms, event_id)``. ``restock``: item id -> the user's repurchase cycle of each
    repeatable item bought (:mod:`app.core.restock`; treat as read-only), carried unchanged
    by :func:`apply_batch`.
    """

    vec: Vector
    t_ref_ms: int = 0
    n_events: int = 0
    updated_at_ms: int = 0
    offsets: dict[int, int] = field(default_factory=dict)
    recent_event_ids: tuple[tuple[str, int], ...] = ()
    topic_id: str = ""
    restock: dict[str, Cycle] = field(default_factory=dict)

    def __post_init__(self) -> None:
        vec = np.array(self.vec, dtype=np.float32, copy=True)
        if vec.ndim != 1:
            raise ValueError(f"profile vector must be 1-D, got shape {vec.shape}")
        vec.flags.writeable = False
        object.__setattr__(self, "vec", vec)
        object.__setattr__(self, "offsets", dict(self.offsets))
        object.__setattr__(self, "restock", dict(self.restock))

    @classmethod
    def empty(cls, dim: int = DEFAULT_DIM) -> Profile:
        """A profile with no history: zero vector of dimension ``dim``."""
        return cls(vec=np.zeros(check_dim(dim), dtype=np.float32))

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return int(self.vec.shape[0])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Profile):
            return NotImplemented
        return (
            np.array_equal(self.vec, other.vec)
            and self.t_ref_ms == other.t_ref_ms
            and self.n_events == other.n_events
            and self.updated_at_ms == other.updated_at_ms
            and self.offsets == other.offsets
            and self.recent_event_ids == other.recent_event_ids
            and self.topic_id == other.topic_id
            and self.restock == other.restock
        )

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class PendingEvent:
    """An event ready to apply: identity, position, event time, weight and item vector.

    ``vector`` is the unit item (or offer) vector, ``None`` when unknown ("no vector").
    """

    event_id: str
    partition: int
    offset: int
    ts_ms: int
    weight: float
    vector: npt.NDArray[np.float32] | None = None


@dataclass(frozen=True)
class ApplyResult:
    """Outcome of :func:`apply_events`.

    ``applied`` counts events applied (including ``no_vector`` ones), ``duplicates`` events
    skipped, ``no_vector`` applied events that had no vector (the vector only decayed).
    ``changed`` is true iff something was applied; when false ``profile`` is the input
    profile unchanged (or a new empty one).
    """

    profile: Profile
    applied: int
    duplicates: int
    no_vector: int
    changed: bool
    fresh_ids: frozenset[str] = frozenset()
    """Ids of the events applied now (not duplicates): only these may update other state."""
    offsets_reset: bool = False
    """The stored offsets were of another topic id and were voided (see the module doc)."""


def offsets_for(profile: Profile | None, topic_id: str) -> dict[int, int]:
    """The offsets of ``profile`` that hold for events of the topic ``topic_id``: all of them
    when the ids agree or either is unknown (""), none when the topic was recreated."""
    if profile is None:
        return {}
    if topic_id and profile.topic_id and profile.topic_id != topic_id:
        return {}
    return profile.offsets


def _prune_recent(
    recent: list[tuple[str, int]], t_ref_ms: int, cfg: ProfileConfig
) -> tuple[tuple[str, int], ...]:
    if cfg.recent_ids_max == 0:
        return ()
    cutoff = t_ref_ms - cfg.recent_ids_retention_ms
    kept = [e for e in recent if e[1] >= cutoff]
    times = [ts for _, ts in kept]
    if times != sorted(set(times)):  # not strictly in time order: order by (ts, id), once each
        kept = sorted(set(kept), key=_by_time)
    return tuple(kept[-cfg.recent_ids_max :])


def _by_time(entry: tuple[str, int]) -> tuple[int, str]:
    return entry[1], entry[0]


def apply_events(
    profile: Profile | None,
    events: Sequence[PendingEvent],
    cfg: ProfileConfig,
    *,
    now_ms: int | None = None,
    topic_id: str = "",
) -> ApplyResult:
    """Apply ``events`` in order to ``profile`` (``None`` = new user); pure and idempotent.

    Applying the same events again is a no-op, and applying a batch in two consecutive parts
    equals applying it at once (up to float32 rounding of the vector). ``topic_id``: the Kafka
    topic id of the events' topic ("" if unknown; see the module doc). One user of
    :func:`apply_batch`, which gives every user the same result as this.
    """
    return apply_batch([ProfileUpdate(profile, events, topic_id)], cfg, now_ms=now_ms)[0]


@dataclass(frozen=True)
class ProfileUpdate:
    """One user's part of :func:`apply_batch`: the stored profile (``None`` = new user), the
    events in order, and the Kafka topic id of their topic ("" if unknown)."""

    profile: Profile | None
    events: Sequence[PendingEvent]
    topic_id: str = ""


@dataclass
class _Fresh:
    """One user's events that are not duplicates, and what the update keeps besides."""

    base: Profile
    events: list[PendingEvent]
    offsets: dict[int, int]
    recent: list[tuple[str, int]]
    duplicates: int
    reset: bool
    topic_id: str


def _fresh(update: ProfileUpdate, cfg: ProfileConfig) -> _Fresh:
    """Idempotency, in Python: drop the events already applied (by offset or event id)."""
    base = update.profile if update.profile is not None else Profile.empty(cfg.dim)
    if base.dim != cfg.dim:
        raise ValueError(f"profile has dimension {base.dim}, config says {cfg.dim}")
    topic_id = update.topic_id
    reset = bool(topic_id and base.topic_id and base.topic_id != topic_id)
    # a recreated topic: -1 overwrites every stored offset of the old one
    offsets = {p: -1 for p in base.offsets} if reset else dict(base.offsets)
    recent = list(base.recent_event_ids)
    seen = {eid for eid, _ in recent}
    fresh: list[PendingEvent] = []
    duplicates = 0
    for ev in update.events:
        if ev.offset <= offsets.get(ev.partition, -1) or ev.event_id in seen:
            duplicates += 1
            continue
        if ev.vector is not None and np.shape(ev.vector) != (cfg.dim,):
            raise ValueError(f"an event vector has shape {np.shape(ev.vector)}, not ({cfg.dim},)")
        offsets[ev.partition] = ev.offset
        seen.add(ev.event_id)
        recent.append((ev.event_id, ev.ts_ms))
        fresh.append(ev)
    return _Fresh(base, fresh, offsets, recent, duplicates, reset, topic_id or base.topic_id)


def apply_batch(
    updates: Sequence[ProfileUpdate], cfg: ProfileConfig, *, now_ms: int | None = None
) -> list[ApplyResult]:
    """:func:`apply_events` for many users at once: idempotency per user in Python, then the
    vectors of every user in one numpy pass. Each user's result is the one
    :func:`apply_events` gives them alone (each sum runs over that user's events only, in
    their order). Raises ``ValueError`` for a profile or event vector of another dimension.

    Per user ``u``, with ``T_u`` the largest event time: ``v_u = v0_u 2^(-(T_u - t_ref_u)/h)
    + sum_i w_i x_i 2^(-(T_u - t_i)/h)``, the sequential rule of the module doc in closed form.
    """
    prepared = [_fresh(update, cfg) for update in updates]
    changed = [f for f in prepared if f.events]
    # the changed users' new vectors and reference times, in the order of ``prepared``
    updated = iter(_decayed_sums(changed, float(cfg.half_life_ms)))
    results: list[ApplyResult] = []
    for f in prepared:
        applied = len(f.events)
        if applied == 0:
            results.append(ApplyResult(f.base, 0, f.duplicates, 0, False, offsets_reset=f.reset))
            continue
        vec, ref = next(updated)
        new = Profile(
            vec=vec,
            t_ref_ms=ref,
            n_events=f.base.n_events + applied,
            updated_at_ms=now_ms if now_ms is not None else ref,
            offsets=f.offsets,
            recent_event_ids=_prune_recent(f.recent, ref, cfg),
            topic_id=f.topic_id,
            restock=f.base.restock,
        )
        results.append(
            ApplyResult(
                new,
                applied,
                f.duplicates,
                sum(1 for ev in f.events if ev.vector is None),
                changed=True,
                fresh_ids=frozenset(ev.event_id for ev in f.events),
                offsets_reset=f.reset,
            )
        )
    return results


def _decayed_sums(
    changed: Sequence[_Fresh], half_life: float
) -> list[tuple[npt.NDArray[np.float32], int]]:
    """Each user's new vector and reference time (see :func:`apply_batch`), one numpy pass."""
    if not changed:
        return []
    t_ref = np.array([f.base.t_ref_ms for f in changed], dtype=np.float64)
    latest = np.array([max(ev.ts_ms for ev in f.events) for f in changed], np.float64)
    new_user = np.array([f.base.n_events == 0 for f in changed])
    t_new = np.where(new_user, latest, np.maximum(t_ref, latest))
    base = np.stack([f.base.vec for f in changed]).astype(np.float64)
    vecs = base * (2.0 ** (-(t_new - t_ref) / half_life))[:, None]
    owners: list[int] = []
    times: list[int] = []
    weights: list[float] = []
    xs: list[npt.NDArray[np.float32]] = []
    for u, f in enumerate(changed):
        for ev in f.events:
            if ev.vector is not None:
                owners.append(u)
                times.append(ev.ts_ms)
                weights.append(ev.weight)
                xs.append(ev.vector)
    if xs:
        owner = np.array(owners, dtype=np.int64)
        coeffs = np.array(weights) * 2.0 ** (
            -(t_new[owner] - np.array(times, dtype=np.float64)) / half_life
        )
        terms = np.stack(xs).astype(np.float64) * coeffs[:, None]
        starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        vecs[owner[starts]] += np.add.reduceat(terms, starts, axis=0)
    return list(zip(vecs.astype(np.float32), t_new.astype(np.int64).tolist(), strict=True))
