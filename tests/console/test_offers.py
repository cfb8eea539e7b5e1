"""The Offers page's arithmetic: rates, posterior, exploration share, sorting."""

from __future__ import annotations

import pytest
from scipy.stats import beta as beta_dist  # type: ignore[import-untyped]

from app.console.offers import (
    DEFAULT_SORT,
    OfferRow,
    beta_interval,
    offer_row,
    offer_rows,
    page_of,
    posterior_means,
    sorted_rows,
)
from app.core.exploration import ExplorationConfig, OfferStats, posterior

pytestmark = pytest.mark.unit

DAY_MS = 86_400_000
CFG = ExplorationConfig(half_life_ms=7 * DAY_MS)


def test_an_offer_without_feedback_is_all_prior_and_fully_explored() -> None:
    row = offer_row("o1", "Offer 1", None, 0.0, 0.0, 10 * DAY_MS, CFG)
    assert row.exploration == 1.0
    assert row.mean == pytest.approx(0.1)  # Beta(1, 9)
    assert row.click_rate is None and row.accept_rate is None
    assert row.interval.low == pytest.approx(beta_dist.ppf(0.025, 1, 9))


def test_rates_and_posterior_of_the_decayed_counts_agree_with_the_workers() -> None:
    now = 14 * DAY_MS
    stats = OfferStats(impressions=400.0, clicks=60.0, accepts=40.0, t_ms=now - 7 * DAY_MS)
    row = offer_row("o1", "", stats, 12.0, 3.0, now, CFG)
    assert row.impressions == pytest.approx(200.0)  # one half-life later
    assert row.click_rate == pytest.approx(0.15) and row.accept_rate == pytest.approx(0.1)
    # successes = max(clicks, accepts) = 30, failures = 170: Beta(31, 179)
    workers = posterior(["o1"], {"o1": stats}, now, CFG)
    assert row.mean == pytest.approx(float(workers.mean[0]))
    assert row.mean == pytest.approx(31 / 210)
    assert row.exploration == pytest.approx(10 / 210)
    assert row.interval.low < row.mean < row.interval.high


def test_the_beta_interval_holds_95_percent() -> None:
    interval = beta_interval(31.0, 179.0)
    mass = beta_dist.cdf(interval.high, 31, 179) - beta_dist.cdf(interval.low, 31, 179)
    assert mass == pytest.approx(0.95)


def test_every_offer_of_the_catalogue_stats_and_sends_gets_a_row() -> None:
    rows = offer_rows(
        {"o1": "One", "o2": "Two"},
        {"o3": OfferStats(1.0, 0.0, 0.0, 0)},
        {"o4": 5.0},
        {},
        0,
        CFG,
    )
    titles = [(r.offer, r.title) for r in rows]
    assert titles == [("o1", "One"), ("o2", "Two"), ("o3", ""), ("o4", "")]


def rows_for_sorting() -> list[OfferRow]:
    stats = {
        "a": OfferStats(10.0, 1.0, 0.0, 0),
        "b": OfferStats(10.0, 5.0, 0.0, 0),
        "c": OfferStats(0.0, 0.0, 0.0, 0),
    }
    return offer_rows({}, stats, {"a": 3.0, "b": 3.0, "c": 9.0}, {}, 0, CFG)


def test_sorting_by_a_column_either_way_with_ties_by_id_and_missing_values_last() -> None:
    rows = rows_for_sorting()
    assert [r.offer for r in sorted_rows(rows, "sent", "desc")] == ["c", "a", "b"]
    assert [r.offer for r in sorted_rows(rows, "sent", "asc")] == ["a", "b", "c"]
    assert [r.offer for r in sorted_rows(rows, "click_rate", "desc")] == ["b", "a", "c"]
    assert [r.offer for r in sorted_rows(rows, "click_rate", "asc")] == ["a", "b", "c"]


def test_an_unknown_sort_column_falls_back_to_the_default() -> None:
    rows = rows_for_sorting()
    column, direction = DEFAULT_SORT
    assert sorted_rows(rows, "__class__", "sideways") == sorted_rows(rows, column, direction)


def test_the_sampled_posterior_means_are_those_of_the_rows() -> None:
    now = 14 * DAY_MS
    stats = {"o1": OfferStats(400.0, 60.0, 40.0, now - 7 * DAY_MS)}
    assert posterior_means(stats, now, CFG) == {"o1": pytest.approx(31 / 210)}
    row = offer_row("o1", "", stats["o1"], 0, 0, now, CFG)
    assert posterior_means(stats, now, CFG)["o1"] == pytest.approx(row.mean)


@pytest.mark.parametrize(
    ("asked", "number", "first"),
    [("1", 1, "o00"), ("3", 3, "o20"), ("9", 3, "o20"), ("0", 1, "o00"), ("x", 1, "o00")],
)
def test_a_page_of_the_table_is_bounded_and_an_odd_page_number_the_nearest(
    asked: str, number: int, first: str
) -> None:
    rows = offer_rows({f"o{i:02}": "" for i in range(25)}, {}, {}, {}, 0, CFG)
    page = page_of(rows, asked, size=10)
    assert (page.number, page.pages, page.total, page.rows[0].offer) == (number, 3, 25, first)
    assert len(page.rows) == (5 if number == 3 else 10)


def test_an_empty_table_is_one_empty_page() -> None:
    page = page_of([], "2")
    assert (page.rows, page.number, page.pages) == ((), 1, 1)
