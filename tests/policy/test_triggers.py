"""Policy state from events: feedback and cart timers; timers fire once."""

from __future__ import annotations

import pytest

from app.core.events import UserEvent
from app.policy.state import UserPolicyState
from app.policy.triggers import FIRED_KEPT, apply_to_state, due_timers, fire, next_due, timer_id

pytestmark = pytest.mark.unit

T = 1_700_000_000_000
DELAY = 1_800_000


def ev(kind: str, item: str | None = None, ts: int = T, **extra: object) -> UserEvent:
    body: dict[str, object] = {"event_id": f"{kind}-{item}-{ts}", "user_id": "u1", "type": kind,
                               "ts": ts, **extra}  # fmt: skip
    if item is not None:
        body["item_id"] = item
    return UserEvent.model_validate(body)


def test_add_to_cart_starts_a_timer_due_after_the_delay_and_names_the_user() -> None:
    state = apply_to_state(UserPolicyState(), "u1", [ev("add_to_cart", "i1")], cart_delay_ms=DELAY)
    assert state.carts == {"i1": T + DELAY} and state.uid == "u1"
    assert next_due(state) == T + DELAY


def test_adding_again_restarts_the_timer() -> None:
    events = [ev("add_to_cart", "i1"), ev("add_to_cart", "i1", ts=T + 60_000)]
    state = apply_to_state(UserPolicyState(), "u1", events, cart_delay_ms=DELAY)
    assert state.carts == {"i1": T + 60_000 + DELAY}


@pytest.mark.parametrize("kind", ["purchase", "remove_from_cart"])
def test_a_purchase_or_removal_cancels_the_timer_of_that_item_only(kind: str) -> None:
    events = [ev("add_to_cart", "i1"), ev("add_to_cart", "i2"), ev(kind, "i1", ts=T + 1)]
    state = apply_to_state(UserPolicyState(), "u1", events, cart_delay_ms=DELAY)
    assert state.carts == {"i2": T + DELAY}


def test_without_pending_timers_the_state_holds_no_user_id() -> None:
    events = [ev("add_to_cart", "i1"), ev("purchase", "i1", ts=T + 1)]
    state = apply_to_state(UserPolicyState(), "u1", events, cart_delay_ms=DELAY)
    assert state.carts == {} and state.uid is None
    assert b"u1" not in state.to_json()


def test_offer_feedback_is_recorded_for_cooldowns() -> None:
    events = [ev("offer_dismissed", offer_id="o1")]
    state = apply_to_state(UserPolicyState(), "u1", events, cart_delay_ms=DELAY)
    assert state.offers["o1"].dismissed_at == T


def test_only_timers_due_at_now_are_due_earliest_first() -> None:
    state = UserPolicyState(carts={"a": 30, "b": 10, "c": 50})
    assert due_timers(state, 30) == [("b", 10), ("a", 30)]
    assert due_timers(state, 9) == []


def test_firing_removes_the_timers_and_remembers_their_ids() -> None:
    state = UserPolicyState(carts={"a": 10, "b": 20}, uid="u1")
    fired = fire(state, [("a", 10)])
    assert fired.carts == {"b": 20} and fired.fired == (timer_id("a", 10),)
    assert fired.uid == "u1"
    done = fire(fired, [("b", 20)])
    assert done.carts == {} and len(done.fired) == 2
    # the id stays, to address the message if it must be published again after a crash
    assert done.uid == "u1"


def test_the_user_id_kept_after_the_last_timer_fired_goes_with_the_next_event() -> None:
    done = fire(UserPolicyState(carts={"a": 10}, uid="u1"), [("a", 10)])
    after = apply_to_state(done, "u1", [ev("view", "x")], cart_delay_ms=DELAY)
    assert after.uid is None and after.fired == done.fired


def test_the_fired_list_is_bounded() -> None:
    state = UserPolicyState(carts={f"i{n}": n for n in range(FIRED_KEPT + 5)})
    fired = fire(state, due_timers(state, 10_000))
    last = FIRED_KEPT + 4
    assert len(fired.fired) == FIRED_KEPT and fired.fired[-1] == timer_id(f"i{last}", last)


def test_the_state_with_timers_round_trips_through_json() -> None:
    state = UserPolicyState(carts={"i1": 5}, fired=("cart:i0:3",), uid="u1")
    assert UserPolicyState.from_json(state.to_json()) == state
