"""Per-offer cooldowns from the user's feedback (event times).

* Dismissed at ``d``: suppressed while ``now < d + after_dismissed``.
* ``impressions_without_click`` (M) or more impressions since the last click or acceptance,
  the last at ``i``: suppressed while ``now < i + after_ignored``. The count is not reset when
  the suppression ends, so the offer gets one more impression per ``after_ignored`` period
  until the user clicks it.
"""

from __future__ import annotations

from app.policy.config import Cooldown
from app.policy.state import OfferFeedback, UserPolicyState


def cooldown_until(feedback: OfferFeedback | None, cooldown: Cooldown) -> int | None:
    """The end (exclusive, epoch ms) of the offer's suppression, or ``None`` if none applies.

    The end may be in the past: compare with ``now`` (:func:`in_cooldown`).
    """
    if feedback is None:
        return None
    ends: list[int] = []
    if feedback.dismissed_at is not None and cooldown.after_dismissed_ms > 0:
        ends.append(feedback.dismissed_at + cooldown.after_dismissed_ms)
    if (
        cooldown.impressions_without_click > 0
        and feedback.impressions >= cooldown.impressions_without_click
        and feedback.last_impression is not None
        and cooldown.after_ignored_ms > 0
    ):
        ends.append(feedback.last_impression + cooldown.after_ignored_ms)
    return max(ends) if ends else None


def in_cooldown(state: UserPolicyState, offer_id: str, now_ms: int, cooldown: Cooldown) -> bool:
    """Whether the offer is suppressed at ``now_ms``."""
    until = cooldown_until(state.offers.get(offer_id), cooldown)
    return until is not None and now_ms < until
