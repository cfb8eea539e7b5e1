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


def own_cap_reached(state: UserPolicyState, channel: Channel, now_ms: int, caps: Caps) -> bool:
    """Whether ``channel`` has reached one of its own caps."""
    own = state.contacts.get(channel, ())
    return any(cap_reached(cap, own, now_ms) for cap in caps.channels.get(channel, ()))


def global_cap_reached(state: UserPolicyState, now_ms: int, caps: Caps) -> bool:
    """Whether the contacts on ``caps.global_channels``, counted together, reach a global cap."""
    if not caps.global_:
        return False
    shared = [t for c in caps.global_channels for t in state.contacts.get(c, ())]
    return any(cap_reached(cap, shared, now_ms) for cap in caps.global_)


def channel_capped(state: UserPolicyState, channel: Channel, now_ms: int, caps: Caps) -> bool:
    """Whether ``channel`` has reached one of its caps or, if it counts globally, a global cap."""
    if own_cap_reached(state, channel, now_ms, caps):
        return True
    return channel in caps.global_channels and global_cap_reached(state, now_ms, caps)


def capped_channels(state: UserPolicyState, now_ms: int, caps: Caps) -> frozenset[Channel]:
    """Every channel :func:`channel_capped` at ``now_ms`` (the global caps counted once)."""
    if not any(state.contacts.values()):  # most users: only a cap of max 0 can be reached
        return caps.closed
    globally = caps.global_channels if global_cap_reached(state, now_ms, caps) else frozenset()
    return frozenset(c for c in Channel if c in globally or own_cap_reached(state, c, now_ms, caps))
