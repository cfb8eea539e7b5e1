"""MovieLens (ml-latest-small layout) as nbo-stream records.

Movies become items (genres and user tags as item tags) and item-recommendation offers; each
rating becomes a ``rating`` event (``ts`` from the rating's timestamp). The data set is read
from where it lies (its licence forbids redistribution): nothing is copied.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OFFER_CHANNELS = ["web", "in_app", "email"]


@dataclass(frozen=True)
class MovieLens:
    """Items, offers and the number of ratings of a MovieLens directory."""

    items: list[dict[str, Any]]
    offers: list[dict[str, Any]]
    ratings_path: Path


def load_movielens(directory: Path, tags_per_movie: int = 5) -> MovieLens:
    """Read ``movies.csv`` and ``tags.csv`` of ``directory`` into items and offers."""
    tag_counts: dict[str, Counter[str]] = defaultdict(Counter)
    tags_file = directory / "tags.csv"
    if tags_file.exists():
        with tags_file.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                tag = row["tag"].strip().lower()
                if tag:
                    tag_counts[row["movieId"]][tag] += 1
    items: list[dict[str, Any]] = []
    offers: list[dict[str, Any]] = []
    with (directory / "movies.csv").open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            genres = [g.lower() for g in row["genres"].split("|") if g != "(no genres listed)"]
            extra = [t for t, _ in tag_counts[row["movieId"]].most_common(tags_per_movie)]
            item_id = f"movie-{row['movieId']}"
            tags = list(dict.fromkeys(genres + extra))
            items.append({"item_id": item_id, "title": row["title"], "tags": tags})
            offers.append(
                {
                    "offer_id": f"watch-{row['movieId']}",
                    "title": f"Watch {row['title']}",
                    "item_ids": [item_id],
                    "tags": tags,
                    "value": 1.0,
                    "channels": OFFER_CHANNELS,
                }
            )
    return MovieLens(items, offers, directory / "ratings.csv")


def rating_events(ratings_path: Path, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Each rating as a ``rating`` UserEvent dict, in time order (at most ``limit``)."""
    with ratings_path.open(newline="", encoding="utf-8") as fh:
        rows = sorted(csv.DictReader(fh), key=lambda r: (int(r["timestamp"]), r["userId"]))
    for n, row in enumerate(rows[:limit] if limit else rows):
        yield {
            "event_id": f"ml-{row['userId']}-{row['movieId']}-{row['timestamp']}",
            "user_id": f"ml-user-{row['userId']}",
            "type": "rating",
            "item_id": f"movie-{row['movieId']}",
            "rating": float(row["rating"]),
            "ts": int(row["timestamp"]) * 1000,
            "context": {"seq": n},
        }
