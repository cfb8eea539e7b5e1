"""Pipeline configurations for tests whose outcome must depend on their input alone."""

from __future__ import annotations

from typing import Any

from app.core.catalog import Catalogue
from app.core.catalog_records import Item, Offer
from app.core.exploration import ExplorationConfig
from app.pipeline.config import PipelineConfig

DETERMINISTIC: dict[str, Any] = {
    "exploration": ExplorationConfig(weight=0),
    "holdout_share": 0.0,
    "ann": None,
}
"""What a default configuration draws at random or decides by catalogue size: exploration
(unseeded draws), the holdout group and the approximate candidate index."""


def deterministic_config(**overrides: Any) -> PipelineConfig:
    """The default configuration with :data:`DETERMINISTIC` off, then ``overrides``."""
    return PipelineConfig(**{**DETERMINISTIC, **overrides})


def genre_catalogue(channels: tuple[str, ...] = ("push", "email", "in_app")) -> Catalogue:
    """Three genres, one item and one offer (value 10, on ``channels``) each."""
    cat = Catalogue(dim=64)
    for i, tags in enumerate([("sci-fi", "space"), ("romance", "drama"), ("action", "cars")]):
        cat.upsert_item(Item(item_id=f"i{i}", tags=tags))
        cat.upsert_offer(
            Offer(offer_id=f"o{i}", title=f"Offer {i}", item_ids=(f"i{i}",), tags=tags,
                  value=10.0, channels=channels)
        )  # fmt: skip
    return cat
