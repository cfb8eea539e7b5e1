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


def beta_interval(alpha: float, beta: float, level: float = 0.95) -> Interval:
    """The equal-tailed ``level`` interval of ``Beta(alpha, beta)``."""
    tail = (1.0 - level) / 2
    low, high = beta_dist.ppf([tail, 1.0 - tail], alpha, beta)
    return Interval(float(low), float(high))


def offer_row(
    offer: str,
    title: str,
    stats: OfferStats | None,
    sent: float,
    sent_hour: float,
    now_ms: int,
    cfg: ExplorationConfig,
) -> OfferRow:
    """One offer's row: ``stats`` (summed over partitions) decayed to ``now_ms``."""
    counts = OfferStats() if stats is None else stats.at(now_ms, cfg.half_life_ms)
    alpha = cfg.prior_alpha + counts.successes
    beta = cfg.prior_beta + counts.failures
    return OfferRow(
        offer,
        title,
        sent,
        sent_hour,
        counts.impressions,
        counts.clicks,
        counts.accepts,
        rate(counts.clicks, counts.impressions),
        rate(counts.accepts, counts.impressions),
        (cfg.prior_alpha + cfg.prior_beta) / (alpha + beta),
        alpha / (alpha + beta),
        beta_interval(alpha, beta),
    )


def offer_rows(
    titles: Mapping[str, str],
    stats: Mapping[str, OfferStats],
    sent: Mapping[str, float],
    sent_hour: Mapping[str, float],
    now_ms: int,
    cfg: ExplorationConfig,
) -> list[OfferRow]:
    """A row for every offer of the catalogue (``titles``), and for any offer with stats or
    sends that the catalogue no longer holds (title empty)."""
    ids = set(titles) | set(stats) | set(sent)
    return [
        offer_row(
            o, titles.get(o, ""), stats.get(o), sent.get(o, 0.0), sent_hour.get(o, 0.0), now_ms, cfg
        )
        for o in sorted(ids)
    ]


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
