"""Reading the inputs of ``nbo embed`` and ``nbo evaluate``: MovieLens or JSON-lines files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from app.core.catalog_records import Item, Offer
from app.core.enums import EventType
from app.core.errors import EventRejected
from app.core.events import decode_event
from app.core.weights import EventWeights
from app.datasets.movielens import load_movielens, rating_events
from app.learning.interactions import InteractionLog


@dataclass(frozen=True)
class LearningData:
    """An interaction log with its catalogue (``offers`` empty: rank the items)."""

    log: InteractionLog
    items: list[Item]
    offers: list[Offer]
    rejected: int = 0
    """Event lines that failed to decode (skipped)."""


def load_movielens_data(directory: Path, weights: EventWeights | None = None) -> LearningData:
    """Movies as items and offers, ratings as ``rating`` events (read in place, not copied)."""
    ml = load_movielens(directory)
    items = [Item.model_validate(d) for d in ml.items]
    offers = [Offer.model_validate(d) for d in ml.offers]
    users: list[str] = []
    item_ids: list[str] = []
    ts: list[int] = []
    ratings: list[float | None] = []
    event_ids: list[str] = []
    for event in rating_events(ml.ratings_path):
        users.append(event["user_id"])
        item_ids.append(event["item_id"])
        ts.append(event["ts"])
        ratings.append(event["rating"])
        event_ids.append(event["event_id"])
    log = InteractionLog.from_columns(
        users,
        item_ids,
        ts,
        [EventType.RATING] * len(users),
        ratings,
        weights,
        event_ids,
        item_ids=[i.item_id for i in items],
    )
    return LearningData(log, items, offers)


def load_event_data(
    events_path: Path, catalog_path: Path | None = None, weights: EventWeights | None = None
) -> LearningData:
    """UserEvent JSON lines (undecodable lines are skipped and counted) and, optionally, a
    catalogue file of Item and Offer JSON lines (as for ``nbo catalog load``). Without a
    catalogue, the items are those of the events, with the events' tags."""
    events = []
    rejected = 0
    with events_path.open("rb") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                events.append(decode_event(line.strip()))
            except EventRejected:
                rejected += 1
    items: list[Item] = []
    offers: list[Offer] = []
    if catalog_path is not None:
        with catalog_path.open("rb") as fh:
            for line in fh:
                if not line.strip():
                    continue
                doc = json.loads(line)
                if "offer_id" in doc:
                    offers.append(Offer.model_validate(doc))
                elif "item_id" in doc and doc.get("delete") is not True:
                    items.append(Item.model_validate(doc))
    known = {i.item_id for i in items}
    tags: dict[str, tuple[str, ...]] = {}
    for event in events:
        if event.is_item_event and event.item_id is not None and event.item_id not in known:
            tags.setdefault(event.item_id, event.tags)
    items.extend(Item(item_id=i, tags=t) for i, t in tags.items())
    log = InteractionLog.from_events(events, weights, [i.item_id for i in items])
    return LearningData(log, items, offers, rejected)
