"""What one batch did, for the worker's metrics and logs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

NO_CHANNEL = "unknown"
"""The channel label of offer feedback that does not say on which channel it came."""


@dataclass
class BatchStats:
    """What one batch did (counts of events unless named otherwise)."""

    received: int = 0
    applied: int = 0
    duplicates: int = 0
    no_vector: int = 0
    dead_lettered: int = 0
    before_erasure: int = 0
    """Events dropped because they are dated at or before their user's erasure."""
    offsets_reset: int = 0
    """Users whose stored offsets were of an earlier incarnation of the topic (recreated)."""
    published: int = 0
    republished: int = 0
    conflicts: int = 0
    decisions: int = 0
    suppressed: int = 0
    """Decisions that sent nothing."""
    suppressed_by_reason: dict[str, int] = field(default_factory=dict)
    """Decisions that sent nothing, per reason (``consent``, ``cap``, ``cooldown``, ...)."""
    sent_by_group: dict[tuple[str, str], int] = field(default_factory=dict)
    """Messages sent per (holdout group, channel)."""
    feedback_by_group: dict[tuple[str, str, str], int] = field(default_factory=dict)
    """Newly applied ``offer_*`` events per (holdout group, event type, channel); the channel
    is the event's own ``channel`` field, :data:`NO_CHANNEL` when it carries none."""
    sent_by_offer: dict[str, int] = field(default_factory=dict)
    """Messages sent that carried the offer, per offer id."""
    reasons: dict[str, int] = field(default_factory=dict)
    phase_s: dict[str, float] = field(default_factory=dict)
    """Seconds spent per phase: decode, load, apply, rank, commit, publish."""

    def merge(self, other: BatchStats) -> None:
        """Add ``other`` (a part of the same batch) to these counts."""
        for name, value in vars(other).items():
            mine = getattr(self, name)
            if isinstance(value, dict):
                for key, count in value.items():
                    mine[key] = mine.get(key, 0) + count
            else:
                setattr(self, name, mine + value)

    def timed(self, phase: str, started: float) -> float:
        """Add the time since ``started`` (perf_counter) to ``phase``; returns now."""
        now = time.perf_counter()
        self.phase_s[phase] = self.phase_s.get(phase, 0.0) + now - started
        return now
