"""The wall clock, read in one place."""

from __future__ import annotations

import time


def now_ms() -> int:
    """Wall-clock time in epoch ms."""
    return time.time_ns() // 1_000_000
