"""Reading the inputs of ``nbo embed`` and ``nbo evaluate``: MovieLens or JSON-lines files
(the Kafka topics: :mod:`app.commands.topic_source`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from app.core.catalog_records import Item, Offer
from app.core.enums import EventType
from app.core.errors import EventRejected
from app.core.events import UserEvent, decode_event
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


def read_catalog_file(path: Path) -> tuple[list[Item], list[Offer]]:
    """Item and Offer JSON lines (as for ``nbo catalog load``); ``"delete": true`` lines and
    blank lines are skipped."""
    items: list[Item] = []
    offers: list[Offer] = []
    with path.open("rb") as fh:
        for line in fh:
            if not line.strip():
                continue
            doc = json.loads(line)
            if "offer_id" in doc:
                offers.append(Offer.model_validate(doc))
            elif "item_id" in doc and doc.get("delete") is not True:
                items.append(Item.model_validate(doc))
    return items, offers


def event_data(
    events: Sequence[UserEvent],
    items: Sequence[Item] = (),
    offers: Sequence[Offer] = (),
    rejected: int = 0,
    weights: EventWeights | None = None,
) -> LearningData:
    """The learning data of decoded ``events`` and a catalogue (``items``, ``offers``): every
    item of an item event that is not in ``items`` is added with the tags of its first event.
    ``rejected``: records that failed to decode, passed through for the report."""
    all_items = list(items)
    known = {i.item_id for i in all_items}
    tags: dict[str, tuple[str, ...]] = {}
    for event in events:
        if event.is_item_event and event.item_id is not None and event.item_id not in known:
            tags.setdefault(event.item_id, event.tags)
    all_items.extend(Item(item_id=i, tags=t) for i, t in tags.items())
    log = InteractionLog.from_events(events, weights, [i.item_id for i in all_items])
    return LearningData(log, all_items, list(offers), rejected)


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
    items, offers = read_catalog_file(catalog_path) if catalog_path is not None else ([], [])
    return event_data(events, items, offers, rejected, weights)
