"""The console's charts: the data they draw, and that they are PNGs."""

from __future__ import annotations

import pytest

from app.console.charts import Line, bar_chart, interval_bars, line_chart, minutes_ago
from app.console.lift import ChannelCounts, GroupCounts, lift_table

pytestmark = pytest.mark.unit

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_points_are_placed_in_minutes_before_now() -> None:
    assert minutes_ago([(940.0, 2.0), (1000.0, 3.0)], 1000.0) == ((-1.0, 2.0), (0.0, 3.0))


def test_the_lift_bars_are_each_groups_rate_and_interval_in_percent() -> None:
    rows = lift_table(
        [
            ChannelCounts("push", GroupCounts(1000, 100), GroupCounts(200, 10)),
            ChannelCounts("email", GroupCounts(100, 5), GroupCounts(0, 0)),
        ],
        1.0,
    )
    bars = interval_bars(rows)
    assert [b.label for b in bars] == ["push\npersonalised", "push\ncontrol", "email\npersonalised"]
    assert [b.group for b in bars] == ["personalised", "control", "personalised"]
    assert bars[0].value == pytest.approx(10.0) and bars[1].value == pytest.approx(5.0)
    assert all(b.low <= b.value <= b.high for b in bars)
    assert bars[0].low == pytest.approx(100 * rows[0].personalised.interval.low)  # type: ignore[union-attr]


def test_charts_are_pngs_with_or_without_data() -> None:
    assert line_chart([Line("sent", ((-2.0, 1.0), (0.0, 3.0)))], "t", "y").startswith(PNG_MAGIC)
    assert line_chart([Line("sent", ())], "t", "y").startswith(PNG_MAGIC)
    assert bar_chart([], "t", "y").startswith(PNG_MAGIC)
