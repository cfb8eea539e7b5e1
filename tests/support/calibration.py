"""Calibrations for tests: fitted "for" a given pipeline configuration, with chosen points."""

from __future__ import annotations

from collections.abc import Sequence

from app.core.calibration import Calibration, FittedOn
from app.pipeline.config import PipelineConfig

FITTED_ON = FittedOn(
    source="test", period_start_ms=0, period_end_ms=1, offers=0, positives=0, depth=20,
    horizon=10, min_bin=1,
)  # fmt: skip


def calibration_for(
    config: PipelineConfig,
    points: Sequence[tuple[float, float]],
    *,
    cooccurrence: bool = False,
) -> Calibration:
    """A calibration with ``points`` whose recipe is ``config``'s own (so a worker with that
    configuration accepts it); ``cooccurrence``: fitted with the co-occurrence part."""
    return Calibration(
        target="test target",
        engine=config.recipe(cooccurrence),
        fitted_on=FITTED_ON,
        points=tuple(points),
    )
