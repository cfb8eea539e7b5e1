from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.profile import (
    DAY_MS,
    PendingEvent,
    Profile,
    ProfileConfig,
    ProfileUpdate,
    apply_batch,
    apply_events,
    decay,
    offsets_for,
)

pytestmark = pytest.mark.unit

DIM = 8
CFG = ProfileConfig(dim=DIM)
H = CFG.half_life_ms


def basis(i: int) -> np.ndarray:
    vec = np.zeros(DIM, dtype=np.float32)
    vec[i % DIM] = 1.0
    return vec


def ev(
    event_id: str,
    offset: int,
    ts: int,
    weight: float = 1.0,
    vector: np.ndarray | None = None,
    partition: int = 0,
) -> PendingEvent:
    return PendingEvent(event_id, partition, offset, ts, weight, vector)


@st.composite
def unit_vectors(draw: st.DrawFn) -> np.ndarray | None:
    if draw(st.integers(0, 9)) == 0:  # one in ten events has no vector
        return None
    seed = draw(st.integers(0, 2**32 - 1))
    vec = np.random.default_rng(seed).normal(size=DIM)
    return (vec / np.linalg.norm(vec)).astype(np.float32)


weights = st.floats(min_value=-5, max_value=5, allow_nan=False)
times = st.integers(min_value=0, max_value=6 * DAY_MS)


def reference(events: list[PendingEvent]) -> np.ndarray:
    t_ref = max(e.ts_ms for e in events)
    acc = np.zeros(DIM, dtype=np.float64)
    for e in events:
        if e.vector is not None:
            acc += e.weight * 2.0 ** (-(t_ref - e.ts_ms) / H) * e.vector.astype(np.float64)
    return acc


def tolerance(events: list[PendingEvent]) -> float:
    return 1e-5 * max(1.0, sum(abs(e.weight) for e in events))


def test_first_event_sets_the_vector_and_reference_time() -> None:
    result = apply_events(None, [ev("a", 5, 1000, 2.0, basis(1), partition=3)], CFG, now_ms=9)
    p = result.profile
    assert (result.applied, result.duplicates, result.no_vector, result.changed) == (1, 0, 0, True)
    assert np.array_equal(p.vec, 2.0 * basis(1))
    assert p.t_ref_ms == 1000
    assert p.n_events == 1
    assert p.updated_at_ms == 9
    assert p.offsets == {3: 5}
    assert p.recent_event_ids == (("a", 1000),)


def test_one_half_life_halves_the_old_contribution() -> None:
    p = apply_events(None, [ev("a", 0, 0, 4.0, basis(0)), ev("b", 1, H, 1.0, basis(1))], CFG)
    assert p.profile.vec[0] == pytest.approx(2.0)
    assert p.profile.vec[1] == pytest.approx(1.0)
    assert p.profile.t_ref_ms == H


def test_late_event_is_discounted_without_moving_the_reference_time() -> None:
    p = apply_events(None, [ev("a", 0, 2 * H, 1.0, basis(0)), ev("b", 1, H, 1.0, basis(1))], CFG)
    assert p.profile.t_ref_ms == 2 * H
    assert p.profile.vec[0] == pytest.approx(1.0)
    assert p.profile.vec[1] == pytest.approx(0.5)


@settings(deadline=None)
@given(
    w=st.floats(min_value=0.1, max_value=10),
    dt1=st.integers(min_value=0, max_value=60 * DAY_MS),
    dt2=st.integers(min_value=0, max_value=60 * DAY_MS),
)
def test_decay_shrinks_an_old_contribution_as_time_passes(w: float, dt1: int, dt2: int) -> None:
    dt1, dt2 = sorted((dt1, dt2))

    def norm_after(dt: int) -> float:
        events = [ev("a", 0, 0, w, basis(0)), ev("tick", 1, dt, 1.0, None)]
        return float(np.linalg.norm(apply_events(None, events, CFG).profile.vec))

    n1, n2 = norm_after(dt1), norm_after(dt2)
    assert n2 <= n1
    assert n1 == pytest.approx(w * decay(dt1, H), rel=1e-6)
    if dt2 - dt1 >= H // 100:
        assert n2 < n1


@settings(deadline=None)
@given(
    st.lists(st.tuples(times, weights, unit_vectors()), min_size=1, max_size=25).flatmap(
        lambda specs: st.tuples(st.just(specs), st.permutations(range(len(specs))))
    )
)
def test_final_vector_does_not_depend_on_arrival_order(
    drawn: tuple[list[tuple[int, float, np.ndarray | None]], list[int]],
) -> None:
    specs, order = drawn
    # one partition per event so any arrival order is legal for the offset check
    events = [ev(f"e{i}", 0, ts, w, x, partition=i) for i, (ts, w, x) in enumerate(specs)]
    in_order = apply_events(None, events, CFG).profile
    shuffled = apply_events(None, [events[i] for i in order], CFG).profile
    expected = reference(events)
    assert np.allclose(in_order.vec, expected, atol=tolerance(events))
    assert np.allclose(shuffled.vec, expected, atol=tolerance(events))
    assert shuffled.t_ref_ms == in_order.t_ref_ms == max(ts for ts, _, _ in specs)
    assert shuffled.recent_event_ids == in_order.recent_event_ids
    assert shuffled.n_events == in_order.n_events == len(events)


@st.composite
def batches(draw: st.DrawFn) -> list[PendingEvent]:
    """Events of two partitions, offsets increasing, ids drawn from a small pool (retries)."""
    n = draw(st.integers(min_value=0, max_value=30))
    next_offset = {0: draw(st.integers(0, 5)), 1: 0}
    out = []
    for _ in range(n):
        partition = draw(st.integers(0, 1))
        next_offset[partition] += draw(st.integers(1, 3))
        event_id = f"e{draw(st.integers(0, 20))}"
        out.append(
            ev(
                event_id,
                next_offset[partition],
                draw(times),
                draw(weights),
                draw(unit_vectors()),
                partition,
            )
        )
    return out


@settings(deadline=None)
@given(batches(), st.booleans())
def test_replaying_a_batch_is_a_no_op(batch: list[PendingEvent], from_empty: bool) -> None:
    start = None if from_empty else apply_events(None, [ev("seed", 0, 0, 1, basis(0), 7)], CFG)
    first = apply_events(start.profile if start else None, batch, CFG)
    again = apply_events(first.profile, batch, CFG, now_ms=123_456)
    assert again.changed is False
    assert again.applied == 0 and again.no_vector == 0
    assert again.duplicates == len(batch)
    assert again.profile is first.profile


@settings(deadline=None)
@given(batches(), st.data())
def test_a_batch_split_in_two_equals_the_batch_at_once(
    batch: list[PendingEvent], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(min_value=0, max_value=len(batch)))
    whole = apply_events(None, batch, CFG)
    head = apply_events(None, batch[:cut], CFG)
    tail = apply_events(head.profile, batch[cut:], CFG)
    assert head.applied + tail.applied == whole.applied
    assert head.duplicates + tail.duplicates == whole.duplicates
    assert head.no_vector + tail.no_vector == whole.no_vector
    a, b = whole.profile, tail.profile
    assert (a.t_ref_ms, a.n_events, a.offsets) == (b.t_ref_ms, b.n_events, b.offsets)
    assert a.recent_event_ids == b.recent_event_ids
    assert np.allclose(a.vec, b.vec, atol=1e-5 * max(1.0, sum(abs(e.weight) for e in batch)))


def test_replayed_offsets_and_repeated_event_ids_are_duplicates() -> None:
    first = apply_events(None, [ev("a", 10, 0, 1, basis(0))], CFG).profile
    result = apply_events(
        first,
        [
            ev("b", 10, 1, 1, basis(1)),  # offset already applied
            ev("c", 9, 1, 1, basis(1)),  # older offset
            ev("a", 11, 1, 1, basis(1)),  # producer retry: same id, new offset
            ev("d", 12, 1, 1, basis(2)),
            ev("d", 13, 1, 1, basis(2)),  # repeat within the call
            ev("e", 3, 1, 1, basis(3), partition=1),  # another partition: fresh
        ],
        CFG,
    )
    assert (result.applied, result.duplicates) == (2, 4)
    assert result.profile.offsets == {0: 12, 1: 3}
    assert result.profile.vec[1] == 0.0
    assert result.profile.vec[2] == pytest.approx(1.0)


def test_event_without_vector_is_consumed_and_counted() -> None:
    start = apply_events(None, [ev("a", 0, 0, 1, basis(0))], CFG).profile
    result = apply_events(start, [ev("b", 1, H, 3.0, None)], CFG)
    assert (result.applied, result.no_vector, result.changed) == (1, 1, True)
    assert result.profile.n_events == 2
    assert result.profile.offsets == {0: 1}
    assert result.profile.vec[0] == pytest.approx(0.5)  # only decayed
    assert apply_events(result.profile, [ev("b", 2, H, 3.0, None)], CFG).duplicates == 1


def test_empty_batch_changes_nothing() -> None:
    result = apply_events(None, [], CFG)
    assert result.changed is False
    assert result.profile == Profile.empty(DIM)


def test_recent_ids_are_bounded_by_count_and_retention() -> None:
    cfg = ProfileConfig(dim=DIM, recent_ids_max=3, recent_ids_retention_ms=DAY_MS)
    events = [ev(f"e{i}", i, i * 1000, 1, basis(i)) for i in range(5)]
    events.append(ev("old", 5, 10 * DAY_MS - DAY_MS - 1, 1, basis(0)))
    events.append(ev("now", 6, 10 * DAY_MS, 1, basis(0)))
    recent = apply_events(None, events, cfg).profile.recent_event_ids
    assert recent == (("now", 10 * DAY_MS),)
    recent = apply_events(None, events[:5], cfg).profile.recent_event_ids
    assert recent == (("e2", 2000), ("e3", 3000), ("e4", 4000))


def test_profile_is_immutable_and_compares_by_value() -> None:
    vec = basis(0)
    p = Profile(vec=vec, t_ref_ms=5, offsets={0: 1})
    vec[0] = 7.0
    assert p.vec[0] == 1.0  # copied
    with pytest.raises(ValueError):
        p.vec[0] = 2.0
    assert p == Profile(vec=basis(0), t_ref_ms=5, offsets={0: 1})
    assert p != Profile(vec=basis(1), t_ref_ms=5, offsets={0: 1})


def test_mismatched_dimensions_are_programming_errors() -> None:
    with pytest.raises(ValueError):
        apply_events(Profile.empty(4), [], CFG)
    with pytest.raises(ValueError):
        apply_events(None, [ev("a", 0, 0, 1, np.ones(3, dtype=np.float32))], CFG)


def test_config_defaults() -> None:
    cfg = ProfileConfig()
    assert (cfg.dim, cfg.half_life_ms) == (64, 7 * DAY_MS)
    assert (cfg.recent_ids_max, cfg.recent_ids_retention_ms) == (32, 7 * DAY_MS)
    with pytest.raises(ValueError):
        ProfileConfig(half_life_ms=0)


def test_events_of_a_recreated_topic_are_applied_though_their_offsets_were_seen() -> None:
    old = apply_events(None, [ev("a", 10, 0, 1, basis(0)), ev("b", 4, 0, 1, basis(0), 1)], CFG,
                       topic_id="old-id").profile  # fmt: skip
    assert old.topic_id == "old-id"
    # the same topic id: offsets 0..10 are redeliveries
    same = apply_events(old, [ev("c", 3, 1, 1, basis(1))], CFG, topic_id="old-id")
    assert (same.applied, same.duplicates, same.offsets_reset) == (0, 1, False)
    # the topic was recreated: its offsets start again at 0 and mean new events
    new = apply_events(old, [ev("c", 3, 1, 1, basis(1)), ev("a", 4, 1, 1, basis(1))], CFG,
                       topic_id="new-id")  # fmt: skip
    assert (new.applied, new.duplicates, new.offsets_reset) == (1, 1, True)  # "a": a retry by id
    assert new.profile.topic_id == "new-id"
    # every old offset is overwritten, so none survives in a stored hash
    assert new.profile.offsets == {0: 3, 1: -1}
    again = apply_events(new.profile, [ev("d", 3, 2, 1, basis(2))], CFG, topic_id="new-id")
    assert (again.applied, again.duplicates, again.offsets_reset) == (0, 1, False)


def test_a_profile_without_a_topic_id_adopts_the_first_one_and_keeps_its_offsets() -> None:
    legacy = apply_events(None, [ev("a", 10, 0, 1, basis(0))], CFG).profile
    assert legacy.topic_id == ""
    result = apply_events(legacy, [ev("b", 10, 1, 1, basis(1)), ev("c", 11, 1, 1, basis(1))],
                          CFG, topic_id="tid")  # fmt: skip
    assert (result.applied, result.duplicates, result.offsets_reset) == (1, 1, False)
    assert result.profile.topic_id == "tid"
    # and a worker that does not know the id keeps the stored one
    kept = apply_events(result.profile, [ev("d", 12, 2, 1, basis(1))], CFG)
    assert kept.profile.topic_id == "tid" and kept.applied == 1


def test_offsets_for_holds_only_within_one_topic_id() -> None:
    profile = apply_events(None, [ev("a", 10, 0, 1, basis(0))], CFG, topic_id="t1").profile
    assert offsets_for(profile, "t1") == {0: 10}
    assert offsets_for(profile, "") == {0: 10}
    assert offsets_for(profile, "t2") == {}
    assert offsets_for(None, "t1") == {}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(batches(), st.booleans(), st.sampled_from(["", "t1", "t2"])), max_size=6))
def test_a_batch_of_users_gives_each_user_what_they_get_alone(
    users: list[tuple[list[PendingEvent], bool, str]],
) -> None:
    """One numpy pass for many users changes no one's result: each sum runs over that
    user's events only, whatever the others (stored or new, any topic id, duplicates)."""
    updates = []
    for n, (batch, stored, topic_id) in enumerate(users):
        profile = None
        if stored:  # a stored profile: the first half applied before, under topic t1
            profile = apply_events(None, batch[: len(batch) // 2], CFG, topic_id="t1").profile
        updates.append(ProfileUpdate(profile, batch, topic_id if n % 2 else ""))
    together = apply_batch(updates, CFG, now_ms=7 * DAY_MS)
    for update, result in zip(updates, together, strict=True):
        alone = apply_events(
            update.profile, update.events, CFG, now_ms=7 * DAY_MS, topic_id=update.topic_id
        )
        assert result == alone


def test_a_bad_vector_in_a_batch_is_an_error_naming_the_shape() -> None:
    good = ProfileUpdate(None, [ev("a", 0, 1, vector=basis(0))])
    bad = ProfileUpdate(None, [ev("b", 0, 1, vector=np.zeros(DIM + 1, np.float32))])
    assert apply_batch([good], CFG)[0].changed
    with pytest.raises(ValueError, match="shape"):
        apply_batch([good, bad], CFG)
