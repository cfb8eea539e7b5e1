"""The console's history of the workers' counters: restart-safe totals, windows, rates."""

from __future__ import annotations

import pytest

from app.console.history import History, Scrape, key, label_values, parse_counters

pytestmark = pytest.mark.unit

EVENTS = key("nbo_events_received_total")


def scrape(url: str, value: float) -> Scrape:
    return Scrape(url, {EVENTS: value})


def test_a_workers_first_answer_is_its_baseline_and_later_answers_add_their_increase() -> None:
    history = History(10)
    history.add(0.0, [scrape("w1", 1000.0)])
    history.add(10.0, [scrape("w1", 1050.0)])
    history.add(20.0, [scrape("w1", 1100.0)])
    window = history.window(EVENTS, 3600.0)
    assert window.increase == 100.0 and window.span_s == 20.0
    assert window.per_s == 5.0


def test_a_counter_that_goes_down_is_a_restart_and_counts_from_zero() -> None:
    history = History(10)
    history.add(0.0, [scrape("w1", 500.0)])
    history.add(10.0, [scrape("w1", 600.0)])
    history.add(20.0, [scrape("w1", 30.0)])  # restarted, counted 30 since
    assert history.window(EVENTS, 3600.0).increase == 130.0


def test_workers_are_summed_and_one_that_misses_a_round_adds_nothing_for_it() -> None:
    history = History(10)
    history.add(0.0, [scrape("w1", 0.0), scrape("w2", 10.0)])
    history.add(10.0, [scrape("w1", 20.0)])  # w2 silent
    history.add(20.0, [scrape("w1", 40.0), scrape("w2", 25.0)])
    assert history.window(EVENTS, 3600.0).increase == 55.0
    assert history.latest is not None and history.latest.alive == ("w1", "w2")


def test_a_window_takes_the_oldest_sample_inside_it_and_says_what_it_covers() -> None:
    history = History(100)
    for i in range(13):  # every 10 s, +1 each time
        history.add(10.0 * i, [scrape("w1", float(i))])
    five = history.window(EVENTS, 60.0)
    assert (five.increase, five.span_s) == (6.0, 60.0)
    hour = history.window(EVENTS, 3600.0)  # shorter history: what it covers, not an hour
    assert (hour.increase, hour.span_s) == (12.0, 120.0)


def test_the_ring_keeps_the_newest_samples_only() -> None:
    history = History(3)
    for i in range(10):
        history.add(float(i), [scrape("w1", float(i * 2))])
    assert len(history) == 3
    assert [s.t_s for s in history.samples] == [7.0, 8.0, 9.0]
    assert history.window(EVENTS, 3600.0) == history.window(EVENTS, 2.0)
    assert history.window(EVENTS, 3600.0).increase == 4.0


def test_fewer_than_two_samples_give_no_rate() -> None:
    history = History(3)
    assert history.window(EVENTS, 60.0).per_s is None
    history.add(0.0, [scrape("w1", 5.0)])
    assert history.window(EVENTS, 60.0).per_s is None
    assert history.rates([EVENTS], 60.0) == []


def test_rates_between_samples_for_a_chart() -> None:
    history = History(10)
    for t, v in ((0.0, 0.0), (10.0, 50.0), (20.0, 150.0), (30.0, 10.0)):
        history.add(t, [scrape("w1", v)])
    assert history.rates([EVENTS], 3600.0) == [(10.0, 5.0), (20.0, 10.0), (30.0, 1.0)]
    assert history.rates([EVENTS], 10.0) == [(30.0, 1.0)]


def test_series_beyond_the_bound_are_not_tracked() -> None:
    history = History(5, max_series=2)
    many = {key("c", n=str(i)): 1.0 for i in range(5)}
    history.add(0.0, [Scrape("w1", many)])
    assert len(list(history.series())) == 2 and history.untracked == 3


def test_a_series_that_appears_in_a_known_workers_answer_counts_from_zero() -> None:
    # a labelled counter is exported from its first increment on: all 7 happened since the
    # worker's previous answer (the first message on a channel, the first suppression)
    history = History(5)
    cap = key("nbo_decisions_suppressed_total", reason="cap")
    history.add(0.0, [scrape("w1", 1.0)])
    history.add(10.0, [Scrape("w1", {EVENTS: 2.0, cap: 7.0})])
    history.add(20.0, [Scrape("w1", {EVENTS: 3.0, cap: 9.0})])
    assert history.window(cap, 3600.0).increase == 9.0
    # a worker seen for the first time: everything it shows is its baseline
    history.add(30.0, [Scrape("w1", {EVENTS: 3.0, cap: 9.0}), Scrape("w2", {cap: 50.0})])
    assert history.window(cap, 3600.0).increase == 9.0


def test_counters_are_read_by_name_and_labels_from_prometheus_text() -> None:
    text = (
        "# TYPE nbo_events_dead_lettered counter\n"
        'nbo_events_dead_lettered_total{reason="InvalidJson"} 3\n'
        'nbo_events_dead_lettered_total{reason="SchemaViolation"} 4\n'
        'nbo_events_dead_lettered_created{reason="InvalidJson"} 1.7e9\n'
        "# TYPE other counter\nother_total 9\n"
    )
    values = parse_counters(text, ["nbo_events_dead_lettered_total"])
    assert values == {
        key("nbo_events_dead_lettered_total", reason="InvalidJson"): 3.0,
        key("nbo_events_dead_lettered_total", reason="SchemaViolation"): 4.0,
    }
    grouped = label_values(values, "nbo_events_dead_lettered_total", "reason")
    assert sorted(grouped) == ["InvalidJson", "SchemaViolation"]


def test_a_history_of_levels_keeps_each_value_as_it_came() -> None:
    history = History(3, gauges=True)
    mean = key("posterior_mean", offer="o1")
    later = key("posterior_mean", offer="o2")
    history.add(0.0, [Scrape("offer-stats", {mean: 0.10})])
    history.add(10.0, [Scrape("offer-stats", {mean: 0.12, later: 0.5})])
    history.add(20.0, [Scrape("offer-stats", {mean: 0.11, later: 0.4})])
    history.add(30.0, [Scrape("offer-stats", {mean: 0.13, later: 0.3})])
    assert history.points(mean, 3600.0) == [(10.0, 0.12), (20.0, 0.11), (30.0, 0.13)]
    assert history.points(mean, 10.0) == [(20.0, 0.11), (30.0, 0.13)]
    assert history.points(key("posterior_mean", offer="o3"), 3600.0) == []
