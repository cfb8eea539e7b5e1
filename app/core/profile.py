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
    ``(ts_ms, event_id)``.
    """

    vec: Vector
    t_ref_ms: int = 0
    n_events: int = 0
    updated_at_ms: int = 0
    offsets: dict[int, int] = field(default_factory=dict)
    recent_event_ids: tuple[tuple[str, int], ...] = ()
    topic_id: str = ""

    def __post_init__(self) -> None:
        vec = np.array(self.vec, dtype=np.float32, copy=True)
        if vec.ndim != 1:
            raise ValueError(f"profile vector must be 1-D, got shape {vec.shape}")
        vec.flags.writeable = False
        object.__setattr__(self, "vec", vec)
        object.__setattr__(self, "offsets", dict(self.offsets))

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
    cutoff = t_ref_ms - cfg.recent_ids_retention_ms
    kept = sorted({(eid, ts) for eid, ts in recent if ts >= cutoff}, key=lambda e: (e[1], e[0]))
    if cfg.recent_ids_max == 0:
        return ()
    return tuple(kept[-cfg.recent_ids_max :])


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
    topic id of the events' topic ("" if unknown; see the module doc).
    """
    base = profile if profile is not None else Profile.empty(cfg.dim)
    if base.dim != cfg.dim:
        raise ValueError(f"profile has dimension {base.dim}, config says {cfg.dim}")
    reset = bool(topic_id and base.topic_id and base.topic_id != topic_id)
    # a recreated topic: -1 overwrites every stored offset of the old one
    offsets = {p: -1 for p in base.offsets} if reset else dict(base.offsets)
    recent = list(base.recent_event_ids)
    seen = {eid for eid, _ in recent}
    fresh: list[PendingEvent] = []
    duplicates = 0
    for ev in events:  # idempotency: only ids and offsets in Python
        if ev.offset <= offsets.get(ev.partition, -1) or ev.event_id in seen:
            duplicates += 1
            continue
        offsets[ev.partition] = ev.offset
        seen.add(ev.event_id)
        recent.append((ev.event_id, ev.ts_ms))
        fresh.append(ev)
    applied = len(fresh)
    if applied == 0:
        return ApplyResult(base, 0, duplicates, 0, changed=False, offsets_reset=reset)

    # v = v0 * 2^(-(T - t_ref)/h) + sum_i w_i x_i 2^(-(T - t_i)/h), T = the largest event
    # time: the sequential rule of the module doc in closed form, in one matrix product
    half_life = float(cfg.half_life_ms)
    times = np.fromiter((ev.ts_ms for ev in fresh), dtype=np.float64, count=applied)
    t_new = float(times.max()) if base.n_events == 0 else max(float(base.t_ref_ms), times.max())
    with_vec = [k for k, ev in enumerate(fresh) if ev.vector is not None]
    no_vector = applied - len(with_vec)
    vec = base.vec.astype(np.float64) * (2.0 ** (-(t_new - base.t_ref_ms) / half_life))
    if with_vec:
        xs = np.stack([np.asarray(fresh[k].vector, dtype=np.float64) for k in with_vec])
        if xs.shape[1] != vec.shape[0]:
            raise ValueError(f"an event vector has {xs.shape[1]} values, not {vec.shape[0]}")
        weights = np.fromiter((fresh[k].weight for k in with_vec), np.float64, len(with_vec))
        coeffs = weights * 2.0 ** (-(t_new - times[with_vec]) / half_life)
        vec += coeffs @ xs
    t_ref = int(t_new)

    new = Profile(
        vec=vec.astype(np.float32),
        t_ref_ms=t_ref,
        n_events=base.n_events + applied,
        updated_at_ms=now_ms if now_ms is not None else t_ref,
        offsets=offsets,
        recent_event_ids=_prune_recent(recent, t_ref, cfg),
        topic_id=topic_id or base.topic_id,
    )
    fresh_ids = frozenset(ev.event_id for ev in fresh)
    return ApplyResult(
        new, applied, duplicates, no_vector, changed=True, fresh_ids=fresh_ids, offsets_reset=reset
    )
