"""Channel choice: the usable channel the user engages with most.

Each channel's engagement rate has a Beta(alpha, beta) prior (default Beta(1, 1)) updated
with ``successes = max(clicks, accepts)`` out of ``trials = max(impressions, successes)``;
the channel with the highest posterior mean ``(alpha + s) / (alpha + beta + n)`` wins. Means
equal within 1e-12 are ties, won by the user's stated preference (the ``true`` channels of
the consent record in their order), then the policy's ``default_order``. Deterministic: a
replay makes the same choice.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping

from app.core.enums import Channel
from app.policy.config import ChannelChoice
from app.policy.consent import ConsentRecord, preference_order
from app.policy.state import ChannelEngagement

_TIE_TOLERANCE = 1e-12


def posterior_mean(stats: ChannelEngagement | None, alpha: float, beta: float) -> float:
    """Posterior mean engagement rate of one channel (the prior mean without data)."""
    if stats is None:
        return alpha / (alpha + beta)
    return (alpha + stats.successes) / (alpha + beta + stats.trials)


def pick_channel(
    usable: Collection[Channel],
    engagement: Mapping[Channel, ChannelEngagement],
    consent: ConsentRecord | None,
    choice: ChannelChoice,
) -> Channel | None:
    """The best of ``usable`` by posterior mean, ties by preference; ``None`` if empty."""
    if not usable:
        return None
    if len(usable) == 1:
        return next(iter(usable))
    means = {
        c: posterior_mean(engagement.get(c), choice.prior_alpha, choice.prior_beta) for c in usable
    }
    best = max(means.values())
    for channel in preference_order(consent, choice.default_order):
        if channel in means and math.isclose(
            means[channel], best, rel_tol=_TIE_TOLERANCE, abs_tol=_TIE_TOLERANCE
        ):
            return channel
    raise AssertionError("unreachable: preference_order lists every channel")
