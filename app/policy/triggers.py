"""What a user's newly applied events do to the policy state, and cart timers as values.

:func:`apply_to_state` folds events (the ones the profile accepted as new, in order) into a
:class:`UserPolicyState`: ``offer_*`` feedback (:func:`~app.policy.state.record_feedback`) and
cart timers (an ``add_to_cart`` starts or restarts its item's timer, due ``delay_ms`` after the
event time; a ``purchase`` or ``remove_from_cart`` cancels it). A timer is identified by
:func:`timer_id`; :func:`fire` removes due timers and remembers their ids (the newest
:data:`FIRED_KEPT`), so the same timer can never fire twice.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.core.events import UserEvent
from app.policy.cart import cancelled_by, on_add_to_cart, starts_timer
from app.policy.state import DEFAULT_LIMITS, StateLimits, UserPolicyState, record_feedback

FIRED_KEPT = 16
"""Ids of fired timers remembered per user."""


def timer_id(item_id: str, due_ms: int) -> str:
    """The id of the cart timer of ``item_id`` due at ``due_ms`` (the message's trigger id)."""
    return f"cart:{item_id}:{due_ms}"


def apply_to_state(
    state: UserPolicyState,
    user_id: str,
    events: Iterable[UserEvent],
    *,
    cart_delay_ms: int,
    limits: StateLimits = DEFAULT_LIMITS,
) -> UserPolicyState:
    """``state`` after ``events`` (see module doc); ``uid`` is set while timers are pending."""
    carts = dict(state.carts)
    for event in events:
        state = record_feedback(state, event, limits=limits)
        if starts_timer(event):
            assert event.item_id is not None
            carts[event.item_id] = on_add_to_cart(event.item_id, event.ts_ms, cart_delay_ms)
        for item_id in cancelled_by(event):
            carts.pop(item_id, None)
    if carts == state.carts and (state.uid is not None) == bool(carts):
        return state
    return state.model_copy(update={"carts": carts, "uid": user_id if carts else None})


def due_timers(state: UserPolicyState, now_ms: int) -> list[tuple[str, int]]:
    """``(item_id, due_ms)`` of the timers due at ``now_ms``, earliest first."""
    return sorted(((i, d) for i, d in state.carts.items() if d <= now_ms), key=lambda x: x[1])


def next_due(state: UserPolicyState) -> int | None:
    """The earliest pending due time (epoch ms), ``None`` without timers."""
    return min(state.carts.values(), default=None)


def fire(state: UserPolicyState, timers: Iterable[tuple[str, int]]) -> UserPolicyState:
    """``state`` without ``timers`` (``(item_id, due_ms)``), their ids added to ``fired``."""
    timers = list(timers)
    if not timers:
        return state
    gone = {item for item, _ in timers}
    carts = {i: d for i, d in state.carts.items() if i not in gone}
    fired = (*state.fired, *(timer_id(i, d) for i, d in timers))[-FIRED_KEPT:]
    # the user id stays (sealed when ids are pseudonymised) until the next event: a fired
    # message may have to be published again, and must be addressed
    return state.model_copy(update={"carts": carts, "fired": fired})
