"""A PNG of a simulation: messages per channel per day, and the top offers, side by side
(matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

from app.simulation.report import SimulationReport


def plot_simulation(report: SimulationReport, path: Path) -> Path:
    """Draw both runs' messages per channel per day and lead offers into ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = ((report.current_label, report.current), (report.candidate_label, report.candidate))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), dpi=120)
    channels = sorted(
        report.current.per_day_by_channel.keys() | report.candidate.per_day_by_channel
    )
    width = 0.4
    for i, (label, run) in enumerate(runs):
        xs = [c + (i - 0.5) * width for c in range(len(channels))]
        left.bar(xs, [run.per_day_by_channel.get(c, 0.0) for c in channels], width, label=label)
    left.set_xticks(range(len(channels)), channels)
    left.set_ylabel("messages per day")
    left.set_title(f"Messages per channel ({report.users:,} users, {report.days:.1f} days)")
    left.legend()
    offers = [o for o, _ in report.current.top_offers]
    offers += [o for o, _ in report.candidate.top_offers if o not in offers]
    for i, (label, run) in enumerate(runs):
        counts = dict(run.top_offers)
        ys = [o + (i - 0.5) * width for o in range(len(offers))]
        right.barh(ys, [counts.get(o, 0) for o in offers], width, label=label)
    right.set_yticks(range(len(offers)), offers, fontsize=7)
    right.invert_yaxis()
    right.set_xlabel("messages led by the offer")
    right.set_title("Top offers")
    right.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
