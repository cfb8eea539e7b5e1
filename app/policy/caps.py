"""Frequency caps over rolling windows, per channel and across channels.

A message sent at ``t`` counts against a cap of window ``W`` at ``now`` while
``now - W < t`` (so one sent exactly ``W`` ago no longer counts); messages "in the future"
(clock skew) count. A channel is capped when any of its own caps, or (for a channel in
``global_channels``) any global cap counted over all those channels, is reached.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.core.enums import Channel
from app.policy.config import Cap, Caps
from app.policy.state import UserPolicyState


def count_in_window(times: Iterable[int], now_ms: int, window_ms: int) -> int:
    """How many of ``times`` are within the rolling window ending at ``now_ms``."""
    start = now_ms - window_ms
    return sum(1 for t in times if t > start)


def cap_reached(cap: Cap, times: Iterable[int], now_ms: int) -> bool:
    """Whether one more message now would exceed ``cap``."""
    return count_in_window(times, now_ms, cap.window_ms) >= cap.max


def channel_capped(state: UserPolicyState, channel: Channel, now_ms: int, caps: Caps) -> bool:
    """Whether ``channel`` has reached one of its caps or, if it counts globally, a global cap."""
    own = state.contacts.get(channel, ())
    if any(cap_reached(cap, own, now_ms) for cap in caps.channels.get(channel, ())):
        return True
    if channel not in caps.global_channels:
        return False
    shared = [t for c in caps.global_channels for t in state.contacts.get(c, ())]
    return any(cap_reached(cap, shared, now_ms) for cap in caps.global_)


def capped_channels(state: UserPolicyState, now_ms: int, caps: Caps) -> frozenset[Channel]:
    """Every channel :func:`channel_capped` at ``now_ms``."""
    return frozenset(c for c in Channel if channel_capped(state, c, now_ms, caps))
