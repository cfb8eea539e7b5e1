"""A columnar interaction log: who interacted with which item, when, and how strongly.

Built once from :class:`~app.core.events.UserEvent` objects (or MovieLens ratings) and shared by
the factorisation, the co-occurrence learner and the offline evaluation, so none of them pays
per-event Python costs twice. Only item events are kept (``offer_*`` events name offers, not
items). Rows are in time order: by ``ts_ms``, ties by user id, then by input order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.core.enums import EventType
from app.core.events import UserEvent
from app.core.weights import EventWeights, event_weight

EVENT_TYPES: tuple[EventType, ...] = tuple(EventType)
"""Codes of :attr:`InteractionLog.kind`: ``EVENT_TYPES[code]`` is the event type."""

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class InteractionLog:
    """Item events as parallel arrays (row ``k`` is one event), in time order.

    ``user`` / ``item``: codes into ``user_ids`` / ``item_ids`` (int32). ``ts_ms``: event time,
    epoch ms. ``kind``: index into :data:`EVENT_TYPES` (int8). ``rating``: stars, NaN when the
    event is not a rating. ``weight``: the engine's signed event weight
    (:func:`~app.core.weights.event_weight`, e.g. a 5-star rating weighs ``(5 - 3) * 2 = 4``).
    ``event_ids``: the events' ids (for the engine's duplicate detection).
    """

    user_ids: tuple[str, ...]
    item_ids: tuple[str, ...]
    user: I32
    item: I32
    ts_ms: I64
    kind: npt.NDArray[np.int8]
    rating: F64
    weight: F64
    event_ids: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.user.shape[0])

    @property
    def n_users(self) -> int:
        """Number of distinct users."""
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        """Number of distinct items."""
        return len(self.item_ids)

    def is_type(self, *types: EventType) -> Bools:
        """Mask of the rows whose event type is one of ``types``."""
        codes = [EVENT_TYPES.index(t) for t in types]
        return np.isin(self.kind, np.array(codes, dtype=np.int8))

    def positives(self, min_rating: float = 4.0) -> Bools:
        """Mask of positive interactions: ``like``, ``purchase``, or a rating >= ``min_rating``.

        ``min_rating`` is in stars (default 4).
        """
        rated = self.is_type(EventType.RATING) & (np.nan_to_num(self.rating) >= min_rating)
        return self.is_type(EventType.LIKE, EventType.PURCHASE) | rated

    def subset(self, mask: Bools | npt.NDArray[np.intp]) -> InteractionLog:
        """The rows selected by a boolean mask or row indices (vocabularies are kept)."""
        rows = np.flatnonzero(mask) if mask.dtype == np.bool_ else np.asarray(mask)
        return InteractionLog(
            user_ids=self.user_ids,
            item_ids=self.item_ids,
            user=self.user[rows],
            item=self.item[rows],
            ts_ms=self.ts_ms[rows],
            kind=self.kind[rows],
            rating=self.rating[rows],
            weight=self.weight[rows],
            event_ids=tuple(self.event_ids[int(r)] for r in rows),
        )

    @classmethod
    def from_events(
        cls,
        events: Iterable[UserEvent],
        weights: EventWeights | None = None,
        item_ids: Sequence[str] = (),
    ) -> InteractionLog:
        """The item events of ``events``, sorted into time order.

        ``weights``: the engine's event weights (default :class:`EventWeights`). ``item_ids``:
        items to put first in the item vocabulary (e.g. the whole catalogue), so that codes
        are stable across logs built over the same catalogue.
        """
        w = weights if weights is not None else EventWeights()
        kept = [e for e in events if e.is_item_event and e.item_id is not None]
        return cls._build(
            users=[e.user_id for e in kept],
            items=[e.item_id or "" for e in kept],
            ts_ms=[e.ts_ms for e in kept],
            kinds=[EVENT_TYPES.index(e.type) for e in kept],
            ratings=[e.rating if e.rating is not None else np.nan for e in kept],
            weights=[event_weight(e, w) for e in kept],
            event_ids=[e.event_id for e in kept],
            item_vocab=item_ids,
        )

    @classmethod
    def from_columns(
        cls,
        users: Sequence[str],
        items: Sequence[str],
        ts_ms: Sequence[int],
        types: Sequence[EventType],
        ratings: Sequence[float | None] | None = None,
        weights: EventWeights | None = None,
        event_ids: Sequence[str] | None = None,
        item_ids: Sequence[str] = (),
    ) -> InteractionLog:
        """A log from plain columns (no pydantic objects: fast for large logs and tests).

        ``ratings`` (stars) is needed for rating events; ``event_ids`` default to ``"e<n>"``.
        Weights follow :func:`~app.core.weights.event_weight` with ``weights``.
        """
        w = weights if weights is not None else EventWeights()
        n = len(users)
        stars = list(ratings) if ratings is not None else [None] * n
        weight_list: list[float] = []
        for kind, star in zip(types, stars, strict=True):
            if kind is EventType.RATING:
                weight_list.append(
                    0.0 if star is None else (star - w.rating_neutral) * w.rating_scale
                )
            else:
                weight_list.append(float(getattr(w, kind.value)))
        return cls._build(
            users=users,
            items=items,
            ts_ms=ts_ms,
            kinds=[EVENT_TYPES.index(t) for t in types],
            ratings=[np.nan if s is None else float(s) for s in stars],
            weights=weight_list,
            event_ids=list(event_ids) if event_ids is not None else [f"e{k}" for k in range(n)],
            item_vocab=item_ids,
        )

    @classmethod
    def _build(
        cls,
        *,
        users: Sequence[str],
        items: Sequence[str],
        ts_ms: Sequence[int],
        kinds: Sequence[int],
        ratings: Sequence[float],
        weights: Sequence[float],
        event_ids: Sequence[str],
        item_vocab: Sequence[str],
    ) -> InteractionLog:
        user_ids = tuple(sorted(set(users)))
        user_index = {u: k for k, u in enumerate(user_ids)}
        item_index = {i: k for k, i in enumerate(dict.fromkeys(item_vocab))}
        for item_id in items:
            if item_id not in item_index:
                item_index[item_id] = len(item_index)
        user = np.array([user_index[u] for u in users], dtype=np.int32)
        item = np.array([item_index[i] for i in items], dtype=np.int32)
        ts = np.array(ts_ms, dtype=np.int64)
        order = np.lexsort((np.arange(len(user)), user, ts))  # ts, then user id, then input
        return cls(
            user_ids=user_ids,
            item_ids=tuple(item_index),
            user=user[order],
            item=item[order],
            ts_ms=ts[order],
            kind=np.array(kinds, dtype=np.int8)[order],
            rating=np.array(ratings, dtype=np.float64)[order],
            weight=np.array(weights, dtype=np.float64)[order],
            event_ids=tuple(event_ids[int(k)] for k in order),
        )
