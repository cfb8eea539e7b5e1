"""Pipeline configurations for tests whose outcome must depend on their input alone."""

from __future__ import annotations

from typing import Any

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
