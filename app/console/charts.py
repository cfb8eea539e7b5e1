"""The console's charts: small PNGs drawn with matplotlib (Agg; the object API, no pyplot and
its global state, so two requests can draw at once), served as images of their own
(``<img src="/charts/...">``): the pages' ``default-src 'self'`` policy forbids inline styles,
which an inline SVG would need.

The data preparation is separate and pure (:func:`minutes_ago`, :func:`interval_bars`); the
drawing functions return PNG bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.figure import Figure

from app.console.lift import ChannelLift

SIZE_IN = (6.4, 2.6)
DPI = 90
COLOURS = ("#1f5fbf", "#c0661b", "#1d7a3a", "#a3261a", "#6b4fa0", "#5b6475")


@dataclass(frozen=True)
class Line:
    """One line of a chart: its label and points ``(x, y)``."""

    label: str
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Bar:
    """One bar with an error interval: label, value, low, high."""

    label: str
    value: float
    low: float
    high: float
    group: str = ""
    """Bars of one group share a colour."""


def minutes_ago(
    points: Sequence[tuple[float, float]], now_s: float
) -> tuple[tuple[float, float], ...]:
    """``(t_s, y)`` points as ``(minutes before now, y)`` (negative x: the past on the left)."""
    return tuple(((t - now_s) / 60.0, y) for t, y in points)


def interval_bars(rows: Sequence[ChannelLift]) -> list[Bar]:
    """The Lift chart's bars: per channel, each group with a rate, in percent, with its
    95 % interval (groups without data are left out)."""
    bars = []
    for row in rows:
        for group, rate in (("personalised", row.personalised), ("control", row.control)):
            if rate.rate is not None and rate.interval is not None:
                bars.append(
                    Bar(
                        f"{row.channel}\n{group}",
                        100 * rate.rate,
                        100 * rate.interval.low,
                        100 * rate.interval.high,
                        group,
                    )
                )
    return bars


def _png(fig: Figure) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI, bbox_inches="tight")
    return out.getvalue()


def line_chart(
    lines: Sequence[Line], title: str, ylabel: str, xlabel: str = "minutes ago"
) -> bytes:
    """A PNG of ``lines`` (an empty chart says there is no data yet)."""
    fig = Figure(figsize=SIZE_IN)
    ax = fig.add_subplot()
    drawn = False
    for i, line in enumerate(lines):
        if line.points:
            xs, ys = zip(*line.points, strict=True)
            ax.plot(xs, ys, label=line.label, color=COLOURS[i % len(COLOURS)], linewidth=1.5)
            drawn = True
    if not drawn:
        ax.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=ax.transAxes)
    elif len(lines) > 1:
        ax.legend(fontsize=7, loc="upper left")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_ylim(bottom=0)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    return _png(fig)


def bar_chart(bars: Sequence[Bar], title: str, ylabel: str) -> bytes:
    """A PNG of ``bars`` with their intervals as error bars."""
    fig = Figure(figsize=SIZE_IN)
    ax = fig.add_subplot()
    if bars:
        groups = list(dict.fromkeys(b.group for b in bars))
        colours = {g: COLOURS[i % len(COLOURS)] for i, g in enumerate(groups)}
        xs = range(len(bars))
        ax.bar(
            xs,
            [b.value for b in bars],
            color=[colours[b.group] for b in bars],
            yerr=[[b.value - b.low for b in bars], [b.high - b.value for b in bars]],
            capsize=4,
        )
        ax.set_xticks(list(xs), [b.label for b in bars], fontsize=7)
    else:
        ax.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)
