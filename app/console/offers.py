"""The Offers page's arithmetic: one row per offer with its sends, feedback, rates, exploration
share and posterior, sortable by any column.

Sources:

* impressions, clicks, acceptances: the offer statistics the workers keep in Redis
  (:mod:`app.storage.offer_stats`), one hash per input partition, **summed over the
  partitions** and **decayed** (half-life ``NBO_OFFER_STATS_HALF_LIFE_S``, default 7 days) to
  now, exactly as the workers' exploration sees them: counts are weighted, not raw totals;
* sends: ``nbo_offers_sent_by_offer_total{offer}`` of the workers' metrics (messages that
  carried the offer since each worker started), and over the last hour from the console's
  history;
* rates (of the decayed counts): click rate ``clicks / impressions``, acceptance rate
  ``accepts / impressions``;
* posterior: the Beta posterior the workers' Thompson sampling draws from,
  ``Beta(prior_alpha + successes, prior_beta + failures)`` (:func:`app.core.exploration.posterior`),
  its mean and 95 % equal-tailed interval;
* exploration share: the part of that posterior that is still prior,
  ``(prior_alpha + prior_beta) / (alpha + beta)``: 100 % for an offer without feedback (it is
  ranked on the prior alone, i.e. explored), towards 0 as feedback accumulates (exploited).

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import beta as beta_dist  # type: ignore[import-untyped]

from app.console.lift import Interval
from app.core.exploration import ExplorationConfig, OfferStats

COLUMNS = (
    "offer",
    "title",
    "sent",
    "sent_hour",
    "impressions",
    "clicks",
    "accepts",
    "click_rate",
    "accept_rate",
    "exploration",
    "mean",
)
"""The columns the page can be sorted by."""
DEFAULT_SORT = ("sent", "desc")
PAGE_ROWS = 100
"""Offers per page of the table (a catalogue may hold 100 000)."""


@dataclass(frozen=True)
class OfferRow:
    """One offer as the Offers page shows it."""

    offer: str
    title: str
    sent: float
    sent_hour: float
    impressions: float
    clicks: float
    accepts: float
    click_rate: float | None
    accept_rate: float | None
    exploration: float
    mean: float
    interval: Interval


def rate(part: float, whole: float) -> float | None:
    """``part / whole`` (``None`` when ``whole`` is 0)."""
    return part / whole if whole > 0 else None


def beta_intervals(
    alpha: Sequence[float], beta: Sequence[float], level: float = 0.95
) -> list[Interval]:
    """The equal-tailed ``level`` interval of each ``Beta(alpha[i], beta[i])`` (one vectorised
    call: a catalogue of thousands of offers costs milliseconds)."""
    if not alpha:
        return []
    tail = (1.0 - level) / 2
    a, b = np.asarray(alpha, dtype=np.float64), np.asarray(beta, dtype=np.float64)
    lows, highs = beta_dist.ppf(tail, a, b), beta_dist.ppf(1.0 - tail, a, b)
    return [Interval(float(lo), float(hi)) for lo, hi in zip(lows, highs, strict=True)]


def beta_interval(alpha: float, beta: float, level: float = 0.95) -> Interval:
    """The equal-tailed ``level`` interval of ``Beta(alpha, beta)``."""
    return beta_intervals([alpha], [beta], level)[0]


def offer_rows(
    titles: Mapping[str, str],
    stats: Mapping[str, OfferStats],
    sent: Mapping[str, float],
    sent_hour: Mapping[str, float],
    now_ms: int,
    cfg: ExplorationConfig,
) -> list[OfferRow]:
    """A row for every offer of the catalogue (``titles``), and for any offer with stats or
    sends that the catalogue no longer holds (title empty); each offer's ``stats`` (summed
    over partitions) decayed to ``now_ms``."""
    ids = sorted(set(titles) | set(stats) | set(sent))
    empty = OfferStats()
    counts = [empty if (s := stats.get(o)) is None else s.at(now_ms, cfg.half_life_ms) for o in ids]
    alphas = [cfg.prior_alpha + c.successes for c in counts]
    betas = [cfg.prior_beta + c.failures for c in counts]
    prior = cfg.prior_alpha + cfg.prior_beta
    return [
        OfferRow(
            o,
            titles.get(o, ""),
            sent.get(o, 0.0),
            sent_hour.get(o, 0.0),
            c.impressions,
            c.clicks,
            c.accepts,
            rate(c.clicks, c.impressions),
            rate(c.accepts, c.impressions),
            prior / (a + b),
            a / (a + b),
            interval,
        )
        for o, c, a, b, interval in zip(
            ids, counts, alphas, betas, beta_intervals(alphas, betas), strict=True
        )
    ]


def posterior_means(
    stats: Mapping[str, OfferStats], now_ms: int, cfg: ExplorationConfig
) -> dict[str, float]:
    """Each offer's posterior mean, its ``stats`` decayed to ``now_ms`` (what the console's
    sampler records for the charts of an offer over time)."""
    out: dict[str, float] = {}
    for offer, counts in stats.items():
        c = counts.at(now_ms, cfg.half_life_ms)
        a, b = cfg.prior_alpha + c.successes, cfg.prior_beta + c.failures
        out[offer] = a / (a + b)
    return out


def offer_row(
    offer: str,
    title: str,
    stats: OfferStats | None,
    sent: float,
    sent_hour: float,
    now_ms: int,
    cfg: ExplorationConfig,
) -> OfferRow:
    """One offer's row (see :func:`offer_rows`)."""
    found = {offer: stats} if stats is not None else {}
    rows = offer_rows({offer: title}, found, {offer: sent}, {offer: sent_hour}, now_ms, cfg)
    return rows[0]


def sort_key(column: str, direction: str) -> tuple[str, str]:
    """A valid ``(column, direction)``: unknown values give :data:`DEFAULT_SORT`."""
    if column not in COLUMNS:
        return DEFAULT_SORT
    return column, "asc" if direction == "asc" else "desc"


def sorted_rows(rows: Sequence[OfferRow], column: str, direction: str) -> list[OfferRow]:
    """``rows`` sorted by ``column`` (``asc`` or ``desc``; ties by offer id, ascending);
    rows without a value (no rate) come last either way."""
    column, direction = sort_key(column, direction)
    with_value = [r for r in rows if getattr(r, column) is not None]
    without = sorted((r for r in rows if getattr(r, column) is None), key=lambda r: r.offer)
    by_id = sorted(with_value, key=lambda r: r.offer)
    ordered = sorted(by_id, key=lambda r: getattr(r, column), reverse=direction == "desc")
    return ordered + without


@dataclass(frozen=True)
class Page:
    """One page of the sorted table: its rows, its number (1-based) and how many there are."""

    rows: tuple[OfferRow, ...]
    number: int
    pages: int
    total: int


def page_of(rows: Sequence[OfferRow], asked: str, size: int = PAGE_ROWS) -> Page:
    """Page ``asked`` (text from the query; anything not a number in range: the nearest
    page) of ``rows``."""
    pages = max(1, -(-len(rows) // size))
    try:
        number = int(asked)
    except ValueError:
        number = 1
    number = min(max(number, 1), pages)
    start = (number - 1) * size
    return Page(tuple(rows[start : start + size]), number, pages, len(rows))
