"""``nbo embed``: learn collaborative item vectors and publish them as catalogue updates.

Reads an interaction log (UserEvent JSON lines, a MovieLens directory, or the events topic:
:mod:`app.commands.topic_source`), learns the collaborative model
(:func:`app.learning.model.train_collab_model`) on all of it, and writes each item that got a
vector as an Item record (its tags, title and price kept, ``vector`` = D floats) to the
item-catalog topic (``--publish``; running workers pick the vectors up without a restart) and/or
to a JSON-lines file (``--output``). Items without a learned vector are not
sent: the catalogue keeps using their tag hash. ``--publish`` also sends the item neighbours
of the hybrid score (learned EASE weights by default, :mod:`app.learning.ease`; or
co-occurrence counts: ``CollabConfig.neighbours``) to the item-neighbours topic (key item id, value
``{"schema_version": 1, "item_id", "neighbours": [[item_id, weight], ...]}``, best first), with
a tombstone for every other item of the catalogue, so an item that lost its neighbours loses
them in the workers too. ``--neighbours FILE`` writes the same records (without tombstones;
read back with :meth:`app.core.cooccurrence.index.CooccurrenceIndex.from_records`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from app.commands.learning_data import LearningData, load_event_data, load_movielens_data
from app.commands.topic_source import TopicSource
from app.core.catalog_records import Item
from app.core.cooccurrence.table import neighbours_record
from app.learning.model import CollabConfig, CollabModel, train_collab_model
from app.settings import Settings

VECTOR_DECIMALS = 6
"""Decimals kept of each vector component on the wire."""


@dataclass(frozen=True)
class LearningSource:
    """Where the interaction log comes from: a MovieLens directory, an events file, or the
    Kafka topics (``topics``), the last two with an optional catalogue file (Item/Offer JSON
    lines, as for ``nbo catalog load``)."""

    movielens: Path | None = None
    events: Path | None = None
    catalog: Path | None = None
    topics: TopicSource | None = None

    def load(self) -> LearningData:
        """Read the log and its items (see :mod:`app.commands.learning_data` and
        :mod:`app.commands.topic_source`)."""
        if self.movielens is not None:
            return load_movielens_data(self.movielens)
        if self.events is not None:
            return load_event_data(self.events, self.catalog)
        if self.topics is not None:
            return self.topics.load(self.catalog)
        raise ValueError("give a MovieLens directory, an events file or the topics")


@dataclass(frozen=True)
class EmbedSummary:
    """What ``nbo embed`` did: items with a learned vector, records written and published."""

    n_events: int
    n_items: int
    n_vectors: int
    written: int
    published: int
    neighbours_written: int
    seconds: float
    neighbours_published: int = 0
    """Item-neighbours records sent, tombstones included."""
    rejected: int = 0
    """Event records (lines, or topic records) that failed to decode and were skipped."""


def item_updates(model: CollabModel, items: Iterable[Item]) -> list[Item]:
    """Each item of ``items`` that has a learned vector, with that vector (rounded)."""
    out: list[Item] = []
    for item in items:
        vec = model.vectors.get(item.item_id)
        if vec is not None:
            vector = tuple(round(float(x), VECTOR_DECIMALS) for x in vec)
            out.append(item.model_copy(update={"vector": vector}))
    return out


def item_record(item: Item) -> tuple[bytes, bytes]:
    """(key, value) of an item-catalog record: key = item id, value = Item JSON."""
    return item.item_id.encode(), item.model_dump_json(exclude_none=True).encode()


def neighbour_records(
    model: CollabModel, items: Iterable[Item]
) -> list[tuple[bytes, bytes | None]]:
    """(key, value) of item-neighbours records: one per item with neighbours (best first), then
    a tombstone (value ``None``) for every other item of ``items``."""
    records: list[tuple[bytes, bytes | None]] = [
        (str(r["item_id"]).encode(), neighbours_record(str(r["item_id"]), r["neighbours"]))
        for r in model.cooccurrence.to_records()
    ]
    with_neighbours = {key for key, _ in records}
    for item in items:
        key = item.item_id.encode()
        if key not in with_neighbours:
            records.append((key, None))
            with_neighbours.add(key)
    return records


def _write_lines(path: Path, lines: Sequence[bytes]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        for line in lines:
            fh.write(line + b"\n")
    return len(lines)


def run_embed(
    settings: Settings,
    source: LearningSource,
    publish: bool,
    output: Path | None,
    *,
    seed: int = 0,
    neighbours: Path | None = None,
    config: CollabConfig | None = None,
    progress: bool = True,
) -> EmbedSummary:
    """Learn on ``source`` and publish and/or write the item updates (module docs).

    D is ``settings.vector_dim``. Publishing uses ``settings.topic_item_catalog`` on the
    configured broker (else the local stack's).
    """
    if not publish and output is None:
        raise ValueError("nothing to do: ask for --publish and/or --output FILE")
    started = time.perf_counter()
    cfg = (config or CollabConfig()).model_copy(update={"dim": settings.vector_dim})
    with tqdm(total=3, desc="embed", unit="step", disable=not progress, leave=False) as bar:
        bar.set_postfix_str("reading")
        data = source.load()
        bar.update()
        bar.set_postfix_str(f"learning from {len(data.log)} events")
        tags = {i.item_id: i.tags for i in data.items}
        model = train_collab_model(data.log, tags, seed, cfg)
        bar.update()
        bar.set_postfix_str("writing")
        updates = item_updates(model, data.items)
        records = [item_record(i) for i in updates]
        written = _write_lines(output, [v for _, v in records]) if output is not None else 0
        neighbour_recs = neighbour_records(model, data.items)
        n_neighbours = 0
        if neighbours is not None:
            lines = [value for _, value in neighbour_recs if value is not None]
            n_neighbours = _write_lines(neighbours, lines)
        bar.update()
    published = neighbours_published = 0
    if publish:
        from app.commands.kafka_io import send_all
        from app.connections import kafka_client_kwargs

        kafka = kafka_client_kwargs(settings)
        published = asyncio.run(
            send_all(
                kafka,
                settings.topic_item_catalog,
                records,
                total=len(records),
                progress=progress,
                description="publishing item vectors",
            )
        )
        neighbours_published = asyncio.run(
            send_all(
                kafka,
                settings.topic_item_neighbours,
                neighbour_recs,
                total=len(neighbour_recs),
                progress=progress,
                description="publishing item neighbours",
            )
        )
    return EmbedSummary(
        n_events=len(data.log),
        n_items=len(data.items),
        n_vectors=len(model.vectors),
        written=written,
        published=published,
        neighbours_written=n_neighbours,
        seconds=time.perf_counter() - started,
        neighbours_published=neighbours_published,
        rejected=data.rejected,
    )
