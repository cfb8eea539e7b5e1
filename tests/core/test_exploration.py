"""Offer feedback stats (decayed counts) and exploration by Thompson sampling."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.events import UserEvent
from app.core.exploration import (
    DAY_MS,
    ExplorationConfig,
    OfferStats,
    OfferStatsUpdate,
    apply_feedback,
    batch_rng,
    exploration_scores,
    merge,
    offer_deltas,
    partition_updates,
    posterior,
    thompson_draws,
)

pytestmark = pytest.mark.unit

H = 7 * DAY_MS
T0 = 1_714_564_800_000
CFG = ExplorationConfig(seed=1, prior_beta=1.0)


def event(kind: str, offer: str = "o1", ts: int = T0, n: int = 0) -> UserEvent:
    return UserEvent(event_id=f"e{n}", user_id="u1", type=kind, offer_id=offer, ts=ts)


def approx_stats(actual: OfferStats, expected: OfferStats) -> bool:
    return actual.t_ms == expected.t_ms and (
        actual.impressions,
        actual.clicks,
        actual.accepts,
    ) == pytest.approx((expected.impressions, expected.clicks, expected.accepts), rel=1e-12)


# --- decay and updates -------------------------------------------------------------------


def test_counts_lose_half_their_weight_per_half_life() -> None:
    stats = OfferStats(8.0, 4.0, 2.0, T0)
    assert stats.at(T0 + H, H) == OfferStats(4.0, 2.0, 1.0, T0 + H)
    assert stats.at(T0 + 3 * H, H) == OfferStats(1.0, 0.5, 0.25, T0 + 3 * H)


def test_counts_never_grow_back_when_asked_for_an_earlier_time() -> None:
    stats = OfferStats(8.0, 4.0, 2.0, T0)
    assert stats.at(T0 - H, H) is stats


def test_merge_values_both_sides_at_the_later_time() -> None:
    old = OfferStats(4.0, 2.0, 0.0, T0)
    new = OfferStats(1.0, 0.0, 1.0, T0 + H)
    assert merge(old, new, H) == OfferStats(3.0, 1.0, 1.0, T0 + H)
    assert merge(new, old, H) == merge(old, new, H)


def test_offer_events_become_per_offer_counts_and_other_events_are_ignored() -> None:
    events = [
        event("offer_impression", "a", n=1),
        event("offer_impression", "a", n=2),
        event("offer_click", "a", n=3),
        event("offer_accepted", "a", n=4),
        event("offer_dismissed", "b", n=5),
        UserEvent(event_id="v", user_id="u1", type="view", item_id="i", offer_id="a", ts=T0),
    ]
    deltas = offer_deltas(events, H)
    assert deltas == {"a": OfferStats(2.0, 1.0, 1.0, T0), "b": OfferStats(1.0, 0.0, 0.0, T0)}


def test_a_dismissal_is_a_trial_without_success() -> None:
    [stats] = offer_deltas([event("offer_impression"), event("offer_dismissed")], H).values()
    assert (stats.successes, stats.failures) == (0.0, 2.0)


def test_success_is_the_larger_of_clicks_and_accepts_not_their_sum() -> None:
    # three impressions: two clicked, one of those accepted -> two successes, one failure
    stats = OfferStats(impressions=3.0, clicks=2.0, accepts=1.0)
    assert (stats.successes, stats.failures) == (2.0, 1.0)
    # an accept without a click still counts; failures never go negative
    assert OfferStats(impressions=1.0, accepts=2.0).failures == 0.0


def test_older_events_of_a_batch_are_decayed_to_the_offer_latest_event() -> None:
    deltas = offer_deltas(
        [event("offer_impression", ts=T0, n=1), event("offer_impression", ts=T0 + H, n=2)], H
    )
    assert deltas["o1"] == OfferStats(1.5, 0.0, 0.0, T0 + H)


def test_apply_feedback_adds_a_batch_to_decayed_stats() -> None:
    stats = {"o1": OfferStats(4.0, 2.0, 0.0, T0), "o2": OfferStats(1.0, 0.0, 0.0, T0)}
    updated = apply_feedback(stats, [event("offer_click", "o1", ts=T0 + H)], H)
    assert updated == {"o1": OfferStats(2.0, 2.0, 0.0, T0 + H), "o2": stats["o2"]}
    assert stats["o1"] == OfferStats(4.0, 2.0, 0.0, T0)  # the input is left alone


kinds = st.sampled_from(["offer_impression", "offer_click", "offer_accepted", "offer_dismissed"])


@settings(deadline=None, max_examples=100)
@given(
    st.lists(
        st.tuples(kinds, st.sampled_from(["a", "b", "c"]), st.integers(0, 30 * DAY_MS)),
        min_size=1,
        max_size=40,
    ),
    st.data(),
)
def test_batching_and_batch_order_do_not_change_the_stats(
    rows: list[tuple[str, str, int]], data: st.DataObject
) -> None:
    events = [event(k, o, T0 + dt, n) for n, (k, o, dt) in enumerate(rows)]
    cuts = sorted(data.draw(st.sets(st.integers(1, len(events)), max_size=4)))
    batches = [events[a:b] for a, b in zip([0, *cuts], [*cuts, len(events)], strict=True)]
    whole = apply_feedback({}, events, H)
    for order in (batches, batches[::-1]):
        stats: dict[str, OfferStats] = {}
        for batch in order:
            stats = apply_feedback(stats, batch, H)
        assert stats.keys() == whole.keys()
        assert all(approx_stats(stats[o], whole[o]) for o in whole)


# --- partition updates -------------------------------------------------------------------


def test_partition_updates_group_offer_events_by_partition_with_their_offset_span() -> None:
    records = [
        (0, 10, event("offer_impression", "a", n=1)),
        (1, 4, event("offer_click", "a", n=2)),
        (0, 11, UserEvent(event_id="v", user_id="u1", type="view", item_id="i", ts=T0)),
        (0, 12, event("offer_accepted", "b", n=3)),
        (2, 7, UserEvent(event_id="w", user_id="u1", type="view", item_id="i", ts=T0)),
    ]
    updates = partition_updates("events", records, H)
    assert [(u.partition, u.first_offset, u.last_offset) for u in updates] == [
        (0, 10, 12),
        (1, 4, 4),
    ]
    assert set(updates[0].stats) == {"a", "b"} and updates[0].source == ("events", 0)


def test_partition_updates_leave_out_records_at_or_below_the_given_offsets() -> None:
    records = [(0, off, event("offer_impression", n=off)) for off in range(10, 15)]
    [update] = partition_updates("events", records, H, after={0: 12})
    assert (update.first_offset, update.last_offset) == (13, 14)
    assert update.stats["o1"].impressions == 2.0
    assert partition_updates("events", records, H, after={0: 14}) == []


@pytest.mark.parametrize(("first", "last"), [(-1, 3), (5, 4)])
def test_an_update_with_an_impossible_offset_span_is_refused(first: int, last: int) -> None:
    with pytest.raises(ValueError):
        OfferStatsUpdate("events", 0, first, last)


# --- posterior and sampling ---------------------------------------------------------------


def test_an_offer_without_stats_gets_the_prior() -> None:
    cfg = ExplorationConfig(prior_alpha=2.0, prior_beta=3.0)
    post = posterior(["new", "known"], {"known": OfferStats(10.0, 4.0, 1.0, T0)}, T0, cfg)
    assert post.alpha.tolist() == [2.0, 6.0]
    assert post.beta.tolist() == [3.0, 9.0]
    assert post.mean.tolist() == pytest.approx([0.4, 0.4])


def test_the_posterior_uses_counts_decayed_to_now() -> None:
    post = posterior(["o"], {"o": OfferStats(10.0, 4.0, 0.0, T0)}, T0 + H, CFG)
    assert (post.alpha[0], post.beta[0]) == (1.0 + 2.0, 1.0 + 3.0)


def test_the_posterior_with_a_snapshot_index_equals_the_one_without() -> None:
    ids = ["a", "b", "c"]
    stats = {"c": OfferStats(5.0, 2.0, 1.0, T0), "gone": OfferStats(9.0, 9.0, 9.0, T0)}
    plain = posterior(ids, stats, T0 + H, CFG)
    indexed = posterior(ids, stats, T0 + H, CFG, index={o: i for i, o in enumerate(ids)})
    assert indexed.alpha.tolist() == plain.alpha.tolist() == [1.0, 1.0, 2.0]
    assert indexed.beta.tolist() == plain.beta.tolist() == [1.0, 1.0, 2.5]


def test_seeded_draws_are_reproducible_and_differ_between_batches() -> None:
    post = posterior(["a", "b", "c"], {}, T0, CFG)
    first = exploration_scores(post, batch_rng(42, 7), CFG.weight)
    again = exploration_scores(post, batch_rng(42, 7), CFG.weight)
    assert first.tolist() == again.tolist()
    assert first.tolist() != exploration_scores(post, batch_rng(42, 8), CFG.weight).tolist()
    assert first.tolist() != exploration_scores(post, batch_rng(43, 7), CFG.weight).tolist()


def test_unseeded_generators_draw_differently() -> None:
    assert batch_rng(None, 0).random() != batch_rng(None, 0).random()


def test_a_negative_batch_number_is_refused() -> None:
    with pytest.raises(ValueError):
        batch_rng(1, -1)


def draws_over_batches(post_ids: list[str], stats: dict[str, OfferStats], n: int) -> np.ndarray:
    post = posterior(post_ids, stats, T0, CFG)
    return np.array([thompson_draws(post, batch_rng(CFG.seed, b)) for b in range(n)])


def test_an_offer_that_gets_clicks_is_drawn_higher_on_average_than_one_that_does_not() -> None:
    stats = {"good": OfferStats(200.0, 40.0, 10.0, T0), "bad": OfferStats(200.0, 0.0, 0.0, T0)}
    draws = draws_over_batches(["good", "bad"], stats, 500)
    good, bad = draws.mean(axis=0)
    assert good == pytest.approx(41 / 202, abs=0.01) and bad == pytest.approx(1 / 202, abs=0.01)
    assert (draws[:, 0] > draws[:, 1]).all()


def test_an_unseen_offer_beats_a_poor_known_one_mostly_and_a_good_one_sometimes() -> None:
    cfg = ExplorationConfig(seed=11)  # the default prior Beta(1, 9)
    stats = {"poor": OfferStats(1000.0, 10.0, 0.0, T0), "good": OfferStats(1000.0, 200.0, 0.0, T0)}
    post = posterior(["poor", "good", "new"], stats, T0, cfg)
    draws = np.array([thompson_draws(post, batch_rng(cfg.seed, b)) for b in range(4000)])
    beats_poor = np.mean(draws[:, 2] > draws[:, 0])
    beats_good = np.mean(draws[:, 2] > draws[:, 1])
    assert beats_poor > 0.8  # new offers get their chance ...
    assert 0.01 < beats_good < 0.15  # ... without displacing what works


def test_exploration_parts_follow_the_response_rate_and_stay_within_the_weight() -> None:
    stats = {"taken": OfferStats(100.0, 30.0, 0.0, T0), "ignored": OfferStats(100.0, 0.0, 0.0, T0)}
    post = posterior(["taken", "ignored", "new"], stats, T0, ExplorationConfig())
    parts = np.array([exploration_scores(post, batch_rng(5, b), 0.2) for b in range(4000)])
    assert parts.min() >= 0 and parts.max() <= 0.2
    taken, ignored, new = parts.mean(axis=0)
    assert taken > new > ignored
    assert parts[:, 2].std() > parts[:, 1].std()  # the unknown offer is explored more


def test_weight_zero_gives_zeros() -> None:
    post = posterior(["a", "b"], {"a": OfferStats(3.0, 1.0, 0.0, T0)}, T0, CFG)
    assert exploration_scores(post, batch_rng(1, 0), 0.0).tolist() == [0.0, 0.0]


def test_config_defaults_and_validation() -> None:
    cfg = ExplorationConfig()
    assert (cfg.weight, cfg.prior_alpha, cfg.prior_beta, cfg.half_life_ms, cfg.seed) == (
        0.1,
        1.0,
        9.0,
        H,
        None,
    )
    for bad in ({"weight": -0.1}, {"prior_alpha": 0.0}, {"half_life_ms": 0}, {"seed": -1}):
        with pytest.raises(ValueError):
            ExplorationConfig(**bad)
