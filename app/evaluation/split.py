"""The temporal split: train on the past, test on the future."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def temporal_split(ts_ms: npt.ArrayLike, quantile: float = 0.8) -> int:
    """The split time, epoch ms: the ``quantile`` (default 0.8) of the event times, rounded up
    to a whole millisecond. Events with ``ts < split`` train; events at or after it test."""
    ts = np.asarray(ts_ms, dtype=np.int64)
    if ts.size == 0:
        raise ValueError("cannot split an empty log")
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    return int(np.ceil(np.quantile(ts.astype(np.float64), quantile)))
